package simplecontent

import "time"

// Content statuses (simple-content's ContentStatus values ocrflow uses).
const (
	StatusCreated    = "created"
	StatusUploaded   = "uploaded"
	StatusProcessing = "processing"
	StatusProcessed  = "processed"
	StatusFailed     = "failed"
)

// Content is a content record as GET /contents/{id} returns it. MIME type,
// size and file name come from the content's metadata. DerivationType is
// "original" or "derived" only on create and list responses; GET leaves it
// empty, so it cannot tell a derived content from an original.
type Content struct {
	ID              string    `json:"id"`
	OwnerID         string    `json:"owner_id"`
	TenantID        string    `json:"tenant_id"`
	Status          string    `json:"status"`
	MimeType        string    `json:"mime_type"`
	FileSize        int64     `json:"file_size"`
	FileName        string    `json:"file_name"`
	DocumentType    string    `json:"document_type"`
	DerivationType  string    `json:"derivation_type"`
	DerivationLevel int       `json:"derivation_level"`
	ParentID        string    `json:"parent_id,omitempty"`
	CreatedAt       time.Time `json:"created_at"`
	UpdatedAt       time.Time `json:"updated_at"`
}

// File is GET /files/{id}: a content with presigned URLs. DownloadURL and
// PreviewURL are empty unless the content's status is "uploaded".
type File struct {
	ContentID   string    `json:"content_id"`
	FileName    string    `json:"file_name"`
	PreviewURL  string    `json:"preview_url"`
	DownloadURL string    `json:"download_url"`
	Status      string    `json:"status"`
	MimeType    string    `json:"mime_type"`
	FileSize    int64     `json:"file_size"`
	OwnerID     string    `json:"owner_id"`
	OwnerType   string    `json:"owner_type"`
	TenantID    string    `json:"tenant_id"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// NewFile is the request of POST /files: a content with one object and a
// presigned upload URL. OwnerID and TenantID must be UUIDs; OwnerType and
// DocumentType are required.
type NewFile struct {
	OwnerID      string `json:"owner_id"`
	OwnerType    string `json:"owner_type"`
	TenantID     string `json:"tenant_id"`
	FileName     string `json:"file_name"`
	MimeType     string `json:"mime_type,omitempty"`
	FileSize     int64  `json:"file_size,omitempty"`
	DocumentType string `json:"document_type"`
}

// CreatedFile is the answer to POST /files.
type CreatedFile struct {
	ContentID string `json:"content_id"`
	ObjectID  string `json:"object_id"`
	UploadURL string `json:"upload_url"`
	Status    string `json:"status"`
}

// NewDerived is the request of POST /contents/{parent}/derived. v5 has no
// variant field: the variant is the derivation type. Params land in the
// derived content's metadata (GET /contents/{id}/metadata → metadata). Send
// the parent's owner and tenant: omitted ones become the nil UUID.
type NewDerived struct {
	DerivationType string         `json:"derivation_type"`
	Params         map[string]any `json:"derivation_params,omitempty"`
	OwnerID        string         `json:"owner_id,omitempty"`
	TenantID       string         `json:"tenant_id,omitempty"`
	// Status is the initial status (default "created"); it is the only way
	// v5 offers to set processing or failed.
	Status string `json:"status,omitempty"`
}

// NewObject is the request of POST /contents/{id}/objects.
type NewObject struct {
	MimeType string `json:"mime_type"`
	FileSize int64  `json:"file_size"`
	FileName string `json:"file_name"`
}

// Object is an object record. UploadURL is set only by CreateObject.
type Object struct {
	ID                 string    `json:"id"`
	ContentID          string    `json:"content_id"`
	StorageBackendName string    `json:"storage_backend_name"`
	Version            int       `json:"version"`
	ObjectKey          string    `json:"object_key"`
	Status             string    `json:"status"`
	UploadURL          string    `json:"upload_url"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

// Metadata is a content's metadata. A PUT replaces all of it, so change it
// with GET, modify, PUT (Client.MergeMetadata).
type Metadata struct {
	ContentType string
	FileName    string
	FileSize    int64
	Title       string
	Description string
	CreatedBy   string
	Tags        []string
	// Custom holds every other key.
	Custom map[string]any
}
