package main

import (
	"fmt"
	"os"

	"github.com/aurax/aurax/models/testmodel"
)

func init() {
	register("testmodel", "write the tiny test GGUF models and Modelfiles", runTestModel)
}

// runTestModel writes the models scripts/ollama-up.sh imports into Ollama.
func runTestModel(args []string) error {
	fs := newFlagSet("testmodel")
	out := fs.String("out", ".cache/testmodels", "directory to write the GGUF files and Modelfiles into")
	if err := parseFlags(fs, args); err != nil {
		return err
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
