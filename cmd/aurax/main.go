// Command aurax is the AURAX inference backend: an OpenAI- and
// Ollama-compatible API in front of Ollama, with retrieval-augmented answers
// and a built-in scaling controller.
//
// Usage:
//
//	aurax [serve] [flags]     start the server (the default)
//	aurax runpod-worker       run as a RunPod Serverless queue worker
//	aurax ingest, search      add files to a RAG collection, search one
//	aurax simulate            replay a request trace through the scaling policies
//	aurax version             print the version (also --version)
//	aurax healthcheck         exit 0 iff the local server is ready
//	aurax testmodel           write the tiny test GGUF models
//	aurax help [COMMAND]      list every subcommand, or one's flags
//
// Exit status: 0 on success and when help was asked for (-h, --help, aurax
// help), 1 when the command failed, 2 for a command line it cannot run (an
// unknown command or flag, a bad flag value, an unexpected argument), as
// Go's flag package uses.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// positional names the arguments a command takes after its flags, for its
// usage line; a command not listed takes none, and any is an error.
var positional = map[string]string{
	"ingest": "PATH...",
	"search": "QUERY...",
}

// register adds a subcommand; each subcommand's file calls it from init.
func register(name, summary string, run func(args []string) error) {
	commands[name] = command{name: name, summary: summary, run: run}
}

// usageError is a command line the command cannot run: exit status 2. When
// printed is set, the flag package has already said why (and shown usage).
type usageError struct {
	err     error
	printed bool
}

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// usageErrorf is a usageError with a message for runMain to print.
func usageErrorf(format string, args ...any) error {
	return usageError{err: fmt.Errorf(format, args...)}
}

func main() {
	os.Exit(runMain(os.Args[1:]))
}

func runMain(args []string) int {
	name := "serve"
	if len(args) > 0 {
		switch args[0] {
		case "-h", "-help", "--help":
			usage(os.Stdout)
			return 0
		case "-version", "--version":
			args[0] = "version"
		}
		if !strings.HasPrefix(args[0], "-") {
			name, args = args[0], args[1:]
		}
	}
	if name == "help" {
		return runHelp(args)
	}
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "aurax: unknown command %q\n\n", name)
		usage(os.Stderr)
		return 2
	}
	return exitCode(name, cmd.run(args))
}

// exitCode prints err (unless already said) and maps it to an exit status.
func exitCode(name string, err error) int {
	var ue usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		if !ue.printed {
			fmt.Fprintf(os.Stderr, "aurax %s: %v\n", name, err)
		}
		return 2
	case errors.Is(err, errExitSilently):
	default:
		fmt.Fprintf(os.Stderr, "aurax %s: %v\n", name, err)
	}
	return 1
}

// runHelp is `aurax help [COMMAND]`.
func runHelp(args []string) int {
	switch {
	case len(args) == 0:
		usage(os.Stdout)
		return 0
	case len(args) > 1:
		fmt.Fprintf(os.Stderr, "aurax help: unexpected argument %q\n", args[1])
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(os.Stderr, "aurax help: unknown command %q\n\n", args[0])
		usage(os.Stderr)
		return 2
	}
	return exitCode(cmd.name, cmd.run([]string{"--help"}))
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: aurax <command> [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-14s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nWithout a command, aurax serves. 'aurax help <command>' or 'aurax <command> --help'\nlists a command's flags; 'aurax --version' prints the version.")
}

// newFlagSet is a subcommand's flag set; its usage starts
// "usage: aurax NAME [flags]", then the summary and the flags.
func newFlagSet(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() { printUsage(fs, name) }
	return fs
}

func printUsage(fs *flag.FlagSet, name string) {
	w := fs.Output()
	line := "aurax " + name + " [flags]"
	if p := positional[name]; p != "" {
		line += " " + p
	}
	fmt.Fprintf(w, "usage: %s\n", line)
	if s := commands[name].summary; s != "" {
		fmt.Fprintf(w, "\n%s.\n", strings.ToUpper(s[:1])+s[1:])
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nflags:")
		printFlags(w, fs, helpWidth)
	}
}

// printFlags is flag.PrintDefaults with each flag's help wrapped to width
// columns under it.
func printFlags(w io.Writer, fs *flag.FlagSet, width int) {
	const indent = "        "
	fs.VisitAll(func(f *flag.Flag) {
		kind, help := flag.UnquoteUsage(f)
		head := "  -" + f.Name
		if kind != "" {
			head += " " + kind
		}
		switch d := f.DefValue; {
		case d == "" || d == "0" || d == "false" || d == "0s":
		case fmt.Sprintf("%T", f.Value) == "*flag.stringValue":
			help += fmt.Sprintf(" (default %q)", d)
		default:
			help += fmt.Sprintf(" (default %s)", d)
		}
		fmt.Fprintln(w, head)
		for _, line := range wrap(help, width-len(indent)) {
			fmt.Fprintln(w, indent+line)
		}
	})
}

// parseFlags parses args as Go's flag package does, with the output routed
// as a user expects: help that was asked for goes to stdout (and returns
// flag.ErrHelp, exit status 0); a bad flag's message and the usage go to
// stderr (a usageError, exit status 2). Arguments left after the flags are
// an error naming them, unless the command takes positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	var out bytes.Buffer
	fs.SetOutput(&out)
	err := fs.Parse(args)
	fs.SetOutput(nil) // later usage, if any, goes to stderr
	switch {
	case errors.Is(err, flag.ErrHelp):
		_, _ = os.Stdout.Write(out.Bytes())
		return flag.ErrHelp
	case err != nil:
		// The flag package wrote the error, then the usage.
		fmt.Fprintf(os.Stderr, "aurax %s: %s", fs.Name(), out.Bytes())
		return usageError{err: err, printed: true}
	}
	if positional[fs.Name()] == "" && fs.NArg() > 0 {
		return unexpectedArgs(fs)
	}
	return nil
}

// unexpectedArgs names the arguments a command does not take, suggesting
// --config for what looks like a configuration file.
func unexpectedArgs(fs *flag.FlagSet) error {
	args := fs.Args()
	quoted := make([]string, len(args))
	for i, a := range args {
		quoted[i] = fmt.Sprintf("%q", a)
	}
	noun := "argument"
	if len(args) > 1 {
		noun = "arguments"
	}
	msg := fmt.Sprintf("unexpected %s %s", noun, strings.Join(quoted, " "))
	if ext := strings.ToLower(filepath.Ext(args[0])); fs.Lookup("config") != nil && (ext == ".yaml" || ext == ".yml") {
		msg += fmt.Sprintf(" (did you mean --config %s?)", args[0])
	} else if strings.HasPrefix(args[0], "-") {
		msg += " (flags go before arguments)"
	} else {
		msg += fmt.Sprintf(" (see 'aurax %s --help')", fs.Name())
	}
	return usageError{err: errors.New(msg)}
}
