package events

// The event catalogue in docs/architecture.md is generated from this
// package's source (type constants, id helpers, payload structs and their
// doc comments, extension constants) and the Trigger manifests; the test
// TestCatalogue_is_current fails when it is stale.
//go:generate go run ./internal/catalogue/gen -doc ../../docs/architecture.md
