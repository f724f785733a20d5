// Command gen writes the event catalogue into a markdown document, between
// the catalogue markers (see package catalogue). It runs from
// shared/events through go generate:
//
//	go generate ./shared/events/
//
// The file is rewritten only when the catalogue changed.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"

	"github.com/ocrflow/ocrflow/eventing"
	"github.com/ocrflow/ocrflow/shared/events/internal/catalogue"
)

func main() {
	docPath := flag.String("doc", "../../docs/architecture.md", "markdown file holding the catalogue markers")
	src := flag.String("src", ".", "directory of package events")
	flag.Parse()
	if err := run(*docPath, *src); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(docPath, src string) error {
	triggers, err := eventing.Triggers()
	if err != nil {
		return err
	}
	block, err := catalogue.Generate(src, triggers)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	out, err := catalogue.Splice(doc, block)
	if err != nil {
		return fmt.Errorf("%s: %w", docPath, err)
	}
	if bytes.Equal(out, doc) {
		return nil
	}
	return os.WriteFile(docPath, out, 0o644)
}
