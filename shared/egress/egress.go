// Package egress is the policy for outbound HTTP to URLs ocrflow did not
// choose itself: presigned source URLs from jobs, download and upload URLs
// handed out by simple-content, presigned S3 URLs. A Policy admits a URL only
// if its host is on an allow list, refuses redirects to any other host, and
// never connects to link-local or cloud metadata addresses, whatever a host
// name resolves to (the check runs on the address actually dialled, so DNS
// rebinding cannot get around it).
package egress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// ErrRefused is wrapped by every error a Policy returns for a URL or an
// address it does not allow.
var ErrRefused = errors.New("egress refused")

// Policy decides which URLs may be fetched. The zero value allows nothing.
// A Policy is safe for concurrent use.
type Policy struct {
	exact    map[string]bool // "host" or "host:port", lower case
	suffixes []string        // ".example.com" from "*.example.com"
}

// NewPolicy returns a policy allowing the given hosts. An entry is a host
// name or IP ("minio"), a host with a port ("minio:9000", which allows only
// that port), or a wildcard suffix ("*.amazonaws.com", which allows every
// subdomain but not the bare domain). Empty entries are ignored.
func NewPolicy(hosts ...string) (*Policy, error) {
	p := &Policy{exact: map[string]bool{}}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
		case strings.HasPrefix(h, "*."):
			if len(h) < 4 || strings.ContainsAny(h[2:], "*/:") {
				return nil, fmt.Errorf("egress: allowed host %q is not a valid wildcard (use *.example.com)", h)
			}
			p.suffixes = append(p.suffixes, h[1:])
		case strings.ContainsAny(h, "/*@?#"):
			return nil, fmt.Errorf("egress: allowed host %q must be a host or host:port, not a URL", h)
		default:
			if host, port, err := net.SplitHostPort(h); err == nil {
				p.exact[net.JoinHostPort(host, port)] = true // this port only
			} else {
				p.exact[strings.Trim(h, "[]")] = true // any port
			}
		}
	}
	return p, nil
}

// HostOf returns the host[:port] of rawURL for use as an allow-list entry,
// or "" if rawURL has none.
func HostOf(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// Hosts returns the allow list in a readable form, for logs and errors.
func (p *Policy) Hosts() []string {
	var out []string
	for h := range p.exact {
		out = append(out, h)
	}
	for _, s := range p.suffixes {
		out = append(out, "*"+s)
	}
	return out
}

// Check returns nil if u may be fetched: its scheme is http or https and its
// host is allowed. The returned error wraps ErrRefused.
func (p *Policy) Check(u *url.URL) error {
	if u == nil {
		return fmt.Errorf("%w: no url", ErrRefused)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("%w: scheme %q is not http or https", ErrRefused, u.Scheme)
	}
	if u.User != nil {
		return fmt.Errorf("%w: urls with credentials are not fetched", ErrRefused)
	}
	host := strings.ToLower(u.Hostname())
	if host == "" {
		return fmt.Errorf("%w: url has no host", ErrRefused)
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	if p.exact[host] || p.exact[net.JoinHostPort(host, port)] {
		return nil
	}
	for _, s := range p.suffixes {
		if strings.HasSuffix(host, s) {
			return nil
		}
	}
	return fmt.Errorf("%w: host %s is not in SOURCE_ALLOWED_HOSTS", ErrRefused, u.Host)
}

// metadata holds addresses of cloud instance metadata services outside the
// link-local ranges (those are refused as a whole).
var metadata = []netip.Addr{
	netip.MustParseAddr("100.100.100.200"), // Alibaba Cloud
	netip.MustParseAddr("fd00:ec2::254"),   // AWS IMDS over IPv6
}

// Denied reports whether ip must never be dialled: link-local (which holds
// 169.254.169.254, the metadata service of most clouds), metadata service
// addresses, unspecified, multicast and broadcast addresses.
func Denied(ip netip.Addr) bool {
	ip = ip.Unmap()
	switch {
	case !ip.IsValid(), ip.IsUnspecified(), ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast(),
		ip.IsInterfaceLocalMulticast(), ip.IsMulticast():
		return true
	case ip == netip.MustParseAddr("255.255.255.255"):
		return true
	}
	for _, m := range metadata {
		if ip == m {
			return true
		}
	}
	return false
}

// control refuses to connect to a denied address. It runs after the name was
// resolved and before connect(2), so no packet reaches a denied address.
func control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse dialled address %q", ErrRefused, address)
	}
	if Denied(ap.Addr()) {
		return fmt.Errorf("%w: address %s is link-local, metadata or otherwise not routable", ErrRefused, ap.Addr())
	}
	return nil
}

// Transport returns an HTTP transport that refuses denied addresses at dial
// time. It does not check hosts; Client does.
func Transport() *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: control}
	return &http.Transport{
		Proxy:                 nil, // a proxy would dial for us and bypass the address check
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          64,
		MaxIdleConnsPerHost:   16,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		ResponseHeaderTimeout: time.Minute,
	}
}

// Client returns an HTTP client that applies the policy to every request
// and redirect: a URL whose host is not allowed is refused before any
// connection is made, a redirect is followed only to the same host (and at
// most 5 times), and denied addresses are never dialled.
func (p *Policy) Client() *http.Client {
	return &http.Client{
		Transport: &guard{p: p, next: Transport()},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 5 {
				return fmt.Errorf("%w: more than 5 redirects", ErrRefused)
			}
			if !strings.EqualFold(req.URL.Host, via[0].URL.Host) {
				return fmt.Errorf("%w: redirect from %s to another host (%s)", ErrRefused, via[0].URL.Host, req.URL.Host)
			}
			return nil
		},
	}
}

// guard checks each request (including each redirect hop) against the
// policy before handing it to the dialling transport.
type guard struct {
	p    *Policy
	next http.RoundTripper
}

// RoundTrip refuses a request the policy denies, closing its body as the
// http.RoundTripper contract requires, and passes any other to the next
// transport.
func (g *guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := g.p.Check(req.URL); err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	return g.next.RoundTrip(req)
}

// Redact returns u without its query and fragment (where presigned URLs
// carry their signatures), for error messages and logs.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	return r.String()
}

// Unwrap strips the *url.Error that net/http wraps around transport
// errors, because its message repeats the full URL, signature included. The
// cause is kept in the chain.
func Unwrap(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		u, perr := url.Parse(ue.URL)
		where := "request"
		if perr == nil {
			where = Redact(u)
		}
		return fmt.Errorf("%s %s: %w", strings.ToLower(ue.Op), where, ue.Err)
	}
	return err
}

// Timeout reports whether err is a timeout (a deadline or a network
// timeout).
func Timeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
