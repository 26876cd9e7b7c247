package rag

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestMarkdownText(t *testing.T) {
	tests := []struct {
		name, md, want string
	}{
		{"heading and paragraph", "# Title\nSome **bold** and *em* text.", "Title\n\nSome bold and em text."},
		{"setext heading", "Title\n=====\nbody", "Title\n\nbody"},
		{"code span keeps underscores", "Call `__init__` first.", "Call __init__ first."},
		{"code span keeps stars", "Use `a * b` here.", "Use a * b here."},
		{"literal stars", "a * b * c", "a * b * c"},
		{"intraword underscores", "snake_case_name and x_1", "snake_case_name and x_1"},
		{"escaped emphasis", `\*not em\* and \_x\_`, "*not em* and _x_"},
		{"bare dunder is strong emphasis (CommonMark)", "the __init__ method", "the init method"},
		{"link keeps text", "See [the docs](http://x.example/a_b) now.", "See the docs now."},
		{"image keeps alt", "![a cat](cat.png) sat", "a cat sat"},
		{"autolink", "Go to <https://example.com>.", "Go to https://example.com."},
		{"reference link", "[text][r]\n\n[r]: http://x", "text"},
		{"entities", "fish &amp; chips &#169;", "fish & chips ©"},
		{"list items own lines", "Intro:\n\n- one\n- two *x*\n  1. nested\n", "Intro:\n\none\ntwo x\nnested"},
		{"loose list", "- one\n\n- two\n", "one\ntwo"},
		{"block quote", "> quoted\n> line\n\nafter", "quoted\nline\n\nafter"},
		{"fenced code verbatim", "Before:\n\n```go\nfunc f() {\n\treturn a * b // __x__\n}\n```\nAfter.",
			"Before:\n\n```go\nfunc f() {\n\treturn a * b // __x__\n}\n```\n\nAfter."},
		{"fenced code with blank line", "~~~\na\n\n  b\n~~~", "```\na\n\n  b\n```"},
		{"indented code", "text\n\n    x := 1\n    y := 2\n\nmore", "text\n\n```\nx := 1\ny := 2\n```\n\nmore"},
		{"code containing a fence", "````\n```\ninner\n```\n````", "````\n```\ninner\n```\n````"},
		{"table", "| a | b |\n|---|---|\n| 1 | *2* |\n| 3 | 4 |", "a | b\n1 | 2\n3 | 4"},
		{"html block", "<div><p>alpha</p><p>beta</p></div>\n\ntext", "alpha\n\nbeta\n\ntext"},
		{"inline html dropped", "a <span>b</span> c", "a b c"},
		{"strikethrough and task", "- [x] ~~done~~ task", "done task"},
		{"thematic break", "one\n\n---\n\ntwo", "one\n\ntwo"},
		{"hard break", "one  \ntwo", "one\ntwo"},
		{"crlf", "# T\r\nbody\r\n", "T\n\nbody"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, MarkdownText(tt.md), "MarkdownText(%q)", tt.md)
		})
	}
}

func TestHTMLText(t *testing.T) {
	tests := []struct {
		name, html, want, title string
	}{
		{"blocks", "<html><head><title> T  x </title><style>x{}</style></head><body><p>One</p><script>bad()</script><div>Two<br>three</div></body></html>",
			"One\n\nTwo\nthree", "T x"},
		{"table cells", "<table><tr><th>name</th><th>value</th></tr><tr><td>alpha</td><td>beta</td></tr></table>",
			"name | value\nalpha | beta", ""},
		{"table with whitespace", "<table>\n  <tr>\n    <td> alpha </td>\n    <td>beta</td>\n  </tr>\n  <tr><td>gamma</td><td>delta</td></tr>\n</table>",
			"alpha | beta\ngamma | delta", ""},
		{"list items", "<ul><li>one</li><li>two <b>bold</b></li></ul><p>after</p>", "one\ntwo bold\n\nafter", ""},
		{"whitespace collapses", "<p>a\n   b\n\n c</p>", "a b c", ""},
		{"inline space kept", "<p><b>a</b> <i>b</i></p>", "a b", ""},
		{"pre verbatim", "<p>x</p><pre>\nfunc f() {\n\treturn 1\n}\n</pre><p>y</p>", "x\n\n```\nfunc f() {\n\treturn 1\n}\n```\n\ny", ""},
		{"pre with code and spans", "<pre><code><span>a</span>  b\n\nc</code></pre>", "```\na  b\n\nc\n```", ""},
		{"dropped", "<noscript>n</noscript><template>t</template><svg><text>s</text></svg>ok", "ok", ""},
		{"entities", "<p>fish &amp; chips</p>", "fish & chips", ""},
		{"headings", "<h1>Title</h1>text", "Title\n\ntext", ""},
		{"unclosed", "<p>a<div>b", "a\n\nb", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, title := HTMLText([]byte(tt.html))
			require.Equal(t, tt.want, got, "HTMLText(%q)", tt.html)
			require.Equal(t, tt.title, title)
		})
	}
}

// checkPlain is what every decoder output must be: valid UTF-8 for valid
// input, no leading or trailing whitespace, no run of more than one blank
// line outside code fences.
func checkPlain(t *testing.T, in, out string) {
	t.Helper()
	if utf8.ValidString(in) && !utf8.ValidString(out) {
		t.Fatalf("invalid UTF-8 %q from %q", out, in)
	}
	if out != strings.TrimSpace(out) {
		t.Fatalf("untrimmed %q from %q", out, in)
	}
}

func FuzzMarkdownText(f *testing.F) {
	for _, s := range []string{"# h\n*x*", "`__init__` a * b", "```go\na\n\n b\n```", "| a | b |\n|-|-|\n| 1 | 2 |",
		"- a\n  - b\n> q", "<div>x</div>", "[l](u) ![i](s) <http://a>", "&amp; \\* ~~s~~ - [ ] t", "    code\n\n    more"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		checkPlain(t, md, MarkdownText(md))
	})
}

func FuzzHTMLText(f *testing.F) {
	for _, s := range []string{"<p>a<script>b</script>", "<table><tr><td>a</td><td>b</td></tr></table>", "<pre>\n x\n\n y</pre>",
		"<title>t</title><ul><li>a<li>b</ul>", "<br/>&amp;<svg><p>x</svg>", "<pre><pre>a</pre>b</pre>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, doc string) {
		text, title := HTMLText([]byte(doc))
		checkPlain(t, doc, text)
		checkPlain(t, doc, title)
	})
}
