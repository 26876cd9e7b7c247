package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/aurax/aurax/models/testmodel"
)

func init() {
	register("testmodel", "write the tiny test GGUF models and Modelfiles", runTestModel)
}

// runTestModel writes the models scripts/ollama-up.sh imports into Ollama.
func runTestModel(args []string) error {
	fs := flag.NewFlagSet("testmodel", flag.ContinueOnError)
	out := fs.String("out", ".cache/testmodels", "directory to write the GGUF files and Modelfiles into")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	f, err := testmodel.Write(*out)
	if err != nil {
		return err
	}
	for _, p := range []string{f.ChatGGUF, f.ChatModelfile, f.EmbedGGUF, f.EmbedModelfile} {
		fmt.Fprintln(os.Stdout, p)
	}
	return nil
}
