package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/ocrflow/ocrflow/shared/standalone"
)

func natsCmd(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("nats", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, `Usage: ocrflow nats

Runs the NATS server ocrflow embeds, with JetStream and file storage, on
its own: clients connect to NATS_LISTEN (default 127.0.0.1:4222), streams
live in NATS_STORE_DIR and survive a restart. Point several "ocrflow serve"
processes at it with NATS_URL=nats://HOST:PORT. Stops on SIGINT/SIGTERM.
For production, run a NATS cluster instead (docs/deployment.md).
`)
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := loadConfig()
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)
	srv, err := standalone.StartServer(standalone.ServerConfig{StoreDir: cfg.NATSStoreDir, Listen: cfg.NATSListen})
	if err != nil {
		return err
	}
	log.Info("nats-server ready", "url", srv.ClientURL(), "store", cfg.NATSStoreDir)
	<-ctx.Done()
	log.Info("nats-server stopping")
	srv.Shutdown()
	srv.WaitForShutdown()
	return nil
}
