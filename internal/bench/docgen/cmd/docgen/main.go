// Command docgen writes the documents of the performance measurements
// (package docgen) into a directory, skipping those already there:
//
//	go run ./internal/bench/docgen/cmd/docgen -out /tmp/docs -kind scanned -pages 500
//	go run ./internal/bench/docgen/cmd/docgen -out /tmp/docs -photos
//
// It prints the path of each file.
package main

import (
	"flag"
	"fmt"
	"log"

	"github.com/ocrflow/ocrflow/internal/bench/docgen"
)

func main() {
	out := flag.String("out", ".", "directory to write into")
	kind := flag.String("kind", string(docgen.Scanned), "born-digital or scanned")
	pages := flag.Int("pages", 0, "pages of the PDF (0: no PDF)")
	photos := flag.Bool("photos", false, "write the page photos (JPEG and PNG, colour and gray)")
	flag.Parse()
	log.SetFlags(0)
	log.SetPrefix("docgen: ")
	if *pages > 0 {
		p, err := docgen.File(*out, docgen.Kind(*kind), *pages)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(p)
	}
	if *photos {
		for _, ph := range docgen.Photos {
			p, err := docgen.PhotoFile(*out, ph)
			if err != nil {
				log.Fatal(err)
			}
			fmt.Println(p)
		}
	}
}
