package simplecontent

import (
	"context"
	"net/http"
	"net/url"
)

// Derivation types GET /contents/{id}/derived-tree reports.
const (
	// TreeOriginal marks a content that derives from nothing.
	TreeOriginal = "original"
	// TreeDerived marks a derived content (ParentID names its parent).
	TreeDerived = "derived"
)

// DerivedTree returns content id followed by all its descendants (GET
// /contents/{id}/derived-tree). The first element is id itself, with
// DerivationType TreeOriginal or TreeDerived: unlike GetContent, it tells
// a derived content from an original. The descendants carry ParentID, so a
// parent's direct derived contents are those whose ParentID is id. A
// missing content is a 404 APIError.
func (cl *Client) DerivedTree(ctx context.Context, id string) ([]Content, error) {
	var out []Content
	err := cl.do(ctx, call{method: http.MethodGet, path: "/contents/" + url.PathEscape(id) + "/derived-tree", out: &out, idempotent: true})
	return out, err
}
