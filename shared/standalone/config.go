package standalone

import (
	"log/slog"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/config"
	"github.com/ocrflow/ocrflow/shared/stage"
)

// ConfigFrom returns the runtime configuration cfg describes: the cluster
// at NATS_URL, or (when it is empty) an embedded server listening on
// NATS_LISTEN with its JetStream store in NATS_STORE_DIR; jobs on
// NATS_JOB_SUBJECT; the routing of eventing/, with the optional autoocr
// Trigger when OCR_STAGES serves that stage.
func ConfigFrom(cfg config.Config, log *slog.Logger) (Config, error) {
	triggers, err := eventing.Routing(cfg.Serves(stage.AutoOCR), cfg.AutoOCRType)
	if err != nil {
		return Config{}, err
	}
	return Config{
		URL:        cfg.NATSURL,
		Server:     ServerConfig{StoreDir: cfg.NATSStoreDir, Listen: cfg.NATSListen},
		JobSubject: cfg.JobSubject,
		Triggers:   triggers,
		Log:        log,
	}, nil
}
