package egress_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

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
	if err != nil {
		t.Fatal(err)
	}
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
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(u)
			if (err == nil) != tc.allowed {
				t.Fatalf("Check(%s) = %v, want allowed=%v", tc.url, err, tc.allowed)
			}
			if err != nil && !errors.Is(err, egress.ErrRefused) {
				t.Fatalf("err %v does not wrap ErrRefused", err)
			}
		})
	}
}

func TestNewPolicy_rejects_malformed_entries(t *testing.T) {
	for _, h := range []string{"http://minio:9000", "*.", "*.a/b", "a/b", "*.x:80"} {
		if _, err := egress.NewPolicy(h); err == nil {
			t.Errorf("NewPolicy(%q) accepted a malformed entry", h)
		}
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
		if got := egress.Denied(netip.MustParseAddr(tc.ip)); got != tc.denied {
			t.Errorf("Denied(%s) = %v, want %v", tc.ip, got, tc.denied)
		}
	}
}

func TestClient_refuses_before_any_request_reaches_a_server(t *testing.T) {
	other, otherHits := counting(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secret") })
	allowed, allowedHits := counting(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/to-other-host":
			http.Redirect(w, r, other.URL+"/x", http.StatusFound)
		case "/to-same-host":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			io.WriteString(w, "ok")
		}
	})
	// 169.254.169.254 is allowed by name here on purpose: the dial-time
	// check must still refuse it (no packet is sent: the check runs
	// before connect).
	p, err := egress.NewPolicy(egress.HostOf(allowed.URL), "169.254.169.254", "[fe80::1]:80")
	if err != nil {
		t.Fatal(err)
	}
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
					t.Fatalf("GET %s succeeded, want refusal", tc.url)
				}
				if !errors.Is(err, egress.ErrRefused) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrRefused with %q", err, tc.wantErr)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != tc.wantBody {
					t.Fatalf("body %q, want %q", b, tc.wantBody)
				}
			}
			if got := allowedHits.Load(); got != tc.wantAllowed {
				t.Fatalf("allowed server saw %d requests, want %d", got, tc.wantAllowed)
			}
			if got := otherHits.Load(); got != 0 {
				t.Fatalf("the unlisted server saw %d requests", got)
			}
		})
	}
}

func TestUnwrap_and_Redact_drop_presigned_queries(t *testing.T) {
	p, _ := egress.NewPolicy("allowed")
	_, err := p.Client().Get("http://unlisted.example/k?X-Amz-Signature=abc&X-Amz-Credential=key")
	if err == nil {
		t.Fatal("want an error")
	}
	msg := egress.Unwrap(err).Error()
	if strings.Contains(msg, "X-Amz-") || !strings.Contains(msg, "http://unlisted.example/k") {
		t.Fatalf("unwrapped error %q leaks the query or lost the location", msg)
	}
	if !errors.Is(egress.Unwrap(err), egress.ErrRefused) {
		t.Fatalf("unwrapped error lost its cause")
	}
}
