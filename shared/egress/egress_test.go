package egress_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/ocrflow/ocrflow/shared/egress"
)

// counting is a server that counts the requests reaching it.
func counting(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var n atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &n
}

func TestPolicy_Check(t *testing.T) {
	p, err := egress.NewPolicy("simple-content:4000", "minio", "*.amazonaws.com", "[::1]:9000", " ")
	require.NoError(t, err)
	for _, tc := range []struct {
		name, url string
		allowed   bool
	}{
		{"listed_host_and_port", "http://simple-content:4000/api/v5/files/x", true},
		{"listed_host_other_port", "http://simple-content:4001/x", false},
		{"host_entry_allows_any_port", "http://minio:9000/bucket/key", true},
		{"host_entry_default_port", "https://MINIO/bucket/key", true},
		{"wildcard_subdomain", "https://bucket.s3.us-east-1.amazonaws.com/k?X-Amz-Signature=s", true},
		{"wildcard_not_bare_domain", "https://amazonaws.com/k", false},
		{"wildcard_suffix_trick", "https://evilamazonaws.com/k", false},
		{"ipv6_with_port", "http://[::1]:9000/k", true},
		{"unlisted_host", "http://example.com/x", false},
		{"metadata_host_unlisted", "http://169.254.169.254/latest/meta-data/", false},
		{"file_scheme", "file:///etc/passwd", false},
		{"gopher_scheme", "gopher://minio:70/x", false},
		{"userinfo", "http://user:pw@minio/x", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			err = p.Check(u)
			if tc.allowed {
				assert.NoError(t, err, "Check(%s), want allowed", tc.url)
				return
			}
			assert.ErrorIs(t, err, egress.ErrRefused, "Check(%s), want refused", tc.url)
		})
	}
}

func TestNewPolicy_rejects_malformed_entries(t *testing.T) {
	for _, h := range []string{"http://minio:9000", "*.", "*.a/b", "a/b", "*.x:80"} {
		_, err := egress.NewPolicy(h)
		assert.Error(t, err, "NewPolicy(%q) accepted a malformed entry", h)
	}
}

func TestDenied(t *testing.T) {
	for _, tc := range []struct {
		ip     string
		denied bool
	}{
		{"169.254.169.254", true}, // AWS, GCP, Azure metadata
		{"169.254.1.1", true},
		{"fe80::1", true},
		{"fd00:ec2::254", true},
		{"100.100.100.200", true},
		{"::ffff:169.254.169.254", true}, // IPv4-mapped
		{"0.0.0.0", true},
		{"::", true},
		{"224.0.0.1", true},
		{"255.255.255.255", true},
		{"127.0.0.1", false}, // embedded servers and tests
		{"10.0.0.5", false},  // in-cluster services
		{"192.168.1.10", false},
		{"52.216.0.1", false},
	} {
		assert.Equal(t, tc.denied, egress.Denied(netip.MustParseAddr(tc.ip)), "Denied(%s)", tc.ip)
	}
}

func TestClient_refuses_before_any_request_reaches_a_server(t *testing.T) {
	other, otherHits := counting(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "secret") })
	allowed, allowedHits := counting(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-other-host":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/to-same-host":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			_, _ = io.WriteString(w, "ok")
		}
	})
	// 169.254.169.254 is allowed by name here on purpose: the dial-time
	// check must still refuse it (no packet is sent: the check runs
	// before connect).
	p, err := egress.NewPolicy(egress.HostOf(allowed.URL), "169.254.169.254", "[fe80::1]:80")
	require.NoError(t, err)
	cl := p.Client()
	for _, tc := range []struct {
		name        string
		url         string
		wantBody    string
		wantErr     string
		wantAllowed int32
	}{
		{"allowed_host", allowed.URL + "/ok", "ok", "", 1},
		{"redirect_same_host_is_followed", allowed.URL + "/to-same-host", "ok", "", 2},
		{"unlisted_host", other.URL + "/x", "", "not in SOURCE_ALLOWED_HOSTS", 0},
		{"redirect_to_other_host", allowed.URL + "/to-other-host", "", "to another host", 1},
		{"redirect_to_metadata", allowed.URL + "/to-metadata", "", "to another host", 1},
		{"metadata_ip_even_if_listed", "http://169.254.169.254/latest/meta-data/", "", "link-local", 0},
		{"link_local_ipv6_even_if_listed", "http://[fe80::1]:80/", "", "link-local", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allowedHits.Store(0)
			resp, err := cl.Get(tc.url)
			if tc.wantErr != "" {
				if err == nil {
					resp.Body.Close()
				}
				require.Error(t, err, "GET %s succeeded, want refusal", tc.url)
				assert.ErrorIs(t, err, egress.ErrRefused)
				assert.ErrorContains(t, err, tc.wantErr)
			} else {
				require.NoError(t, err)
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				assert.Equal(t, tc.wantBody, string(b), "body")
			}
			assert.Equal(t, tc.wantAllowed, allowedHits.Load(), "requests the allowed server saw")
			assert.Zero(t, otherHits.Load(), "requests the unlisted server saw")
		})
	}
}

func TestUnwrap_and_Redact_drop_presigned_queries(t *testing.T) {
	p, err := egress.NewPolicy("allowed")
	require.NoError(t, err)
	_, err = p.Client().Get("http://unlisted.example/k?X-Amz-Signature=abc&X-Amz-Credential=key")
	require.Error(t, err)
	msg := egress.Unwrap(err).Error()
	assert.NotContains(t, msg, "X-Amz-", "unwrapped error leaks the query")
	assert.Contains(t, msg, "http://unlisted.example/k", "unwrapped error lost the location")
	assert.ErrorIs(t, egress.Unwrap(err), egress.ErrRefused, "unwrapped error lost its cause")
}
