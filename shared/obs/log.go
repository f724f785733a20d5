package obs

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// Log field names the handler adds.
const (
	LogTraceID = "trace_id"
	LogSpanID  = "span_id"
)

// LogHandler wraps h so that every record logged with a context that
// carries a span context (the ctx-taking slog methods: InfoContext …)
// gets trace_id and span_id fields. Wrapping twice is a no-op.
func LogHandler(h slog.Handler) slog.Handler {
	if _, ok := h.(logHandler); ok {
		return h
	}
	return logHandler{h}
}

// Logger returns l logging through LogHandler.
func Logger(l *slog.Logger) *slog.Logger {
	if _, ok := l.Handler().(logHandler); ok {
		return l
	}
	return slog.New(LogHandler(l.Handler()))
}

type logHandler struct{ slog.Handler }

// Handle adds the trace and span ids of ctx to r and passes it on.
func (h logHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String(LogTraceID, sc.TraceID().String()), slog.String(LogSpanID, sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs returns the wrapped handler with attrs, still adding trace ids.
func (h logHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return logHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup returns the wrapped handler with a group, still adding trace ids.
func (h logHandler) WithGroup(name string) slog.Handler {
	return logHandler{h.Handler.WithGroup(name)}
}
