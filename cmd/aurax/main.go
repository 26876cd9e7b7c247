// Command aurax is the AURAX inference backend: an OpenAI- and
// Ollama-compatible API in front of Ollama, with retrieval-augmented answers
// and a built-in scaling controller.
//
// Usage:
//
//	aurax [serve] [flags]     start the server (the default)
//	aurax version             print the version
//	aurax healthcheck         exit 0 iff the local server is ready
//	aurax testmodel           write the tiny test GGUF models
//	aurax help                list every subcommand
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
)

// command is one subcommand. run gets the arguments after its name and
// returns an error to print; errExitSilently exits non-zero without a message.
type command struct {
	name, summary string
	run           func(args []string) error
}

var commands = map[string]command{}

var errExitSilently = errors.New("exit 1")

// register adds a subcommand; each subcommand's file calls it from init.
func register(name, summary string, run func(args []string) error) {
	commands[name] = command{name: name, summary: summary, run: run}
}

func main() {
	os.Exit(runMain(os.Args[1:]))
}

func runMain(args []string) int {
	name := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		name, args = args[0], args[1:]
	}
	if name == "help" {
		usage(os.Stdout)
		return 0
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "aurax: unknown command %q\n\n", name)
		usage(os.Stderr)
		return 2
	}
	if err := cmd.run(args); err != nil {
		switch {
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, errExitSilently):
		default:
			fmt.Fprintf(os.Stderr, "aurax %s: %v\n", name, err)
		}
		return 1
	}
	return 0
}

func usage(w *os.File) {
	fmt.Fprintln(w, "usage: aurax <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-12s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun 'aurax <command> --help' for a command's flags.")
}
