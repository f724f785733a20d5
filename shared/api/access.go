package api

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Tenants and tokens.

type tenantKey struct{}

// tenantOf returns the tenant the request's token is bound to, and
// whether tokens are in force at all.
func (s *Server) tenantOf(r *http.Request) (tenant string, scoped bool) {
	if len(s.cfg.Tokens) == 0 {
		return "", false
	}
	t, _ := r.Context().Value(tenantKey{}).(string)
	return t, true
}

// authenticate requires a known bearer token on every /v1 route when
// tokens are configured, and binds the request to the token's tenant.
func (s *Server) authenticate(next http.Handler) http.Handler {
	if len(s.cfg.Tokens) == 0 {
		return next
	}
	type entry struct{ token, tenant []byte }
	var tokens []entry
	for tok, tenant := range s.cfg.Tokens {
		tokens = append(tokens, entry{[]byte(tok), []byte(tenant)})
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		scheme, given, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		var tenant []byte
		if strings.EqualFold(scheme, "Bearer") {
			g := []byte(strings.TrimSpace(given))
			// Compare with every token, in constant time each, so the
			// time taken says nothing about which one nearly matched.
			for _, e := range tokens {
				if subtle.ConstantTimeCompare(g, e.token) == 1 {
					tenant = e.tenant
				}
			}
		}
		if tenant == nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="ocrflow"`)
			s.writeProblem(w, r, http.StatusUnauthorized, ProblemUnauthorized, "send Authorization: Bearer <token> with a token of API_TOKENS")
			return
		}
		ctx := context.WithValue(r.Context(), tenantKey{}, string(tenant))
		ctx = WithLogAttrs(ctx, slog.String("tenant", string(tenant)))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// CORS.

// corsHeaders are the request headers a cross-origin caller may send.
var corsHeaders = []string{"Accept", "Authorization", "Content-Type", "Content-Disposition", "Last-Event-Id", "X-Request-Id"}

// validOrigin reports whether o is a serialized origin: scheme://host[:port].
func validOrigin(o string) bool {
	u, err := url.Parse(o)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" &&
		u.Path == "" && u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// cors answers preflight requests and marks responses readable by the
// configured origins. Without origins it does nothing: browsers then keep
// other origins' scripts from reading any answer.
func (s *Server) cors(next http.Handler) http.Handler {
	if len(s.cfg.CORSOrigins) == 0 {
		return next
	}
	anyOrigin := slices.Contains(s.cfg.CORSOrigins, "*")
	allowed := map[string]bool{}
	for _, o := range s.cfg.CORSOrigins {
		allowed[strings.ToLower(o)] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		h := w.Header()
		h.Add("Vary", "Origin")
		if origin == "" || (!anyOrigin && !allowed[strings.ToLower(origin)]) {
			next.ServeHTTP(w, r)
			return
		}
		allowOrigin := origin
		if anyOrigin {
			allowOrigin = "*"
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Add("Vary", "Access-Control-Request-Method")
			h.Add("Vary", "Access-Control-Request-Headers")
			method := r.Header.Get("Access-Control-Request-Method")
			if method != http.MethodGet && method != http.MethodPost && method != http.MethodHead {
				w.WriteHeader(http.StatusNoContent) // no Allow-Origin: the browser refuses
				return
			}
			var ok []string
			for _, hd := range strings.Split(r.Header.Get("Access-Control-Request-Headers"), ",") {
				hd = http.CanonicalHeaderKey(strings.TrimSpace(hd))
				if hd != "" && (slices.Contains(corsHeaders, hd) || strings.HasPrefix(hd, "Ce-")) {
					ok = append(ok, hd)
				}
			}
			h.Set("Access-Control-Allow-Origin", allowOrigin)
			h.Set("Access-Control-Allow-Methods", "GET, HEAD, POST")
			if len(ok) > 0 {
				h.Set("Access-Control-Allow-Headers", strings.Join(ok, ", "))
			}
			h.Set("Access-Control-Max-Age", strconv.Itoa(600))
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.Set("Access-Control-Allow-Origin", allowOrigin)
		h.Set("Access-Control-Expose-Headers", "Location, "+HeaderRequestID)
		next.ServeHTTP(w, r)
	})
}

// Log attributes from the context.

type logAttrsKey struct{}

// WithLogAttrs returns ctx carrying attrs, which every log line written
// with ctx by the server's logger (the *Context slog methods) includes.
func WithLogAttrs(ctx context.Context, attrs ...slog.Attr) context.Context {
	prev, _ := ctx.Value(logAttrsKey{}).([]slog.Attr)
	return context.WithValue(ctx, logAttrsKey{}, append(slices.Clip(prev), attrs...))
}

// contextHandler adds the attributes of WithLogAttrs to each record.
type contextHandler struct{ slog.Handler }

// Handle adds ctx's attributes to r and hands it on.
func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if attrs, ok := ctx.Value(logAttrsKey{}).([]slog.Attr); ok && len(attrs) > 0 {
		r = r.Clone()
		r.AddAttrs(attrs...)
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs keeps the context attributes on the derived handler.
func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup keeps the context attributes on the derived handler.
func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
