package rag

import (
	"bytes"
	"regexp"
	"strings"
	"unicode"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/ast"
	"github.com/yuin/goldmark/extension"
	east "github.com/yuin/goldmark/extension/ast"
	"github.com/yuin/goldmark/text"
	"github.com/yuin/goldmark/util"
	"golang.org/x/net/html"
)

// Plain text from Markdown and HTML: what a reader sees, one block per
// paragraph. Headings, paragraphs, block quotes, tables and code blocks are
// separated by blank lines (where the chunker breaks first); list items and
// table rows are one a line, table cells separated by " | ". Preformatted
// text (Markdown code blocks, HTML <pre>) is kept verbatim inside a ```
// fence, which the chunker recognises and keeps line by line.

// markdown parses CommonMark plus GitHub's tables, strikethrough and task
// lists. A goldmark.Markdown is safe for concurrent use.
var markdown = goldmark.New(goldmark.WithExtensions(extension.Table, extension.Strikethrough, extension.TaskList))

// MarkdownText renders Markdown as plain text: emphasis and link syntax are
// dropped (link and image text kept), code spans and code blocks are kept
// verbatim, HTML blocks go through HTMLText and inline HTML tags are
// dropped. Literal characters that are not syntax (a * b, snake_case,
// escaped \*) stay.
func MarkdownText(src string) string {
	source := []byte(src)
	doc := markdown.Parser().Parse(text.NewReader(source))
	w := &plainWriter{}
	mdBlocks(w, source, doc, "\n\n")
	return w.String()
}

// mdBlocks writes the block children of n, separated by sep.
func mdBlocks(w *plainWriter, src []byte, n ast.Node, sep string) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		mdBlock(w, src, c, sep)
	}
}

func mdBlock(w *plainWriter, src []byte, n ast.Node, sep string) {
	switch n := n.(type) {
	case *ast.Heading, *ast.Paragraph, *ast.TextBlock:
		if _, ok := n.(*ast.Heading); ok {
			sep = "\n\n"
		}
		w.breakWith(sep)
		mdInlines(w, src, n)
		w.breakWith(sep)
	case *ast.List:
		w.breakWith(sep)
		for item := n.FirstChild(); item != nil; item = item.NextSibling() {
			w.breakWith("\n")
			mdBlocks(w, src, item, "\n") // an item's paragraphs and sublists, one a line
		}
		w.breakWith(sep)
	case *ast.Blockquote:
		w.breakWith(sep)
		mdBlocks(w, src, n, sep)
		w.breakWith(sep)
	case *ast.FencedCodeBlock:
		w.code(string(n.Language(src)), lines(src, n))
	case *ast.CodeBlock:
		w.code("", lines(src, n))
	case *ast.HTMLBlock:
		raw := lines(src, n)
		if n.HasClosure() {
			raw += string(n.ClosureLine.Value(src))
		}
		if t, _ := HTMLText([]byte(raw)); t != "" {
			w.breakWith("\n\n")
			w.write(t)
			w.breakWith("\n\n")
		}
	case *east.Table:
		w.breakWith("\n\n")
		for row := n.FirstChild(); row != nil; row = row.NextSibling() {
			w.breakWith("\n")
			for cell := row.FirstChild(); cell != nil; cell = cell.NextSibling() {
				if cell != row.FirstChild() {
					w.inline(" | ")
				}
				mdInlines(w, src, cell)
			}
		}
		w.breakWith("\n\n")
	case *ast.ThematicBreak:
		w.breakWith("\n\n")
	default:
		mdBlocks(w, src, n, sep)
	}
}

// mdInlines writes the inline children of n.
func mdInlines(w *plainWriter, src []byte, n ast.Node) {
	for c := n.FirstChild(); c != nil; c = c.NextSibling() {
		switch c := c.(type) {
		case *ast.Text:
			v := c.Value(src)
			if !c.IsRaw() {
				v = unescape(v)
			}
			w.write(string(v))
			if c.SoftLineBreak() || c.HardLineBreak() {
				w.write("\n")
			}
		case *ast.String:
			v := c.Value
			if !c.IsRaw() && !c.IsCode() {
				v = unescape(v)
			}
			w.write(string(v))
		case *ast.CodeSpan:
			for t := c.FirstChild(); t != nil; t = t.NextSibling() {
				switch t := t.(type) {
				case *ast.Text:
					w.write(string(t.Value(src)))
				case *ast.String:
					w.write(string(t.Value))
				}
			}
		case *ast.AutoLink:
			w.write(string(c.Label(src)))
		case *ast.RawHTML, *east.TaskCheckBox:
			// Tags only (their text is in the sibling Text nodes); a
			// checkbox is not text.
		default: // emphasis, links, images (alt text), strikethrough
			mdInlines(w, src, c)
		}
	}
}

func unescape(v []byte) []byte {
	return util.ResolveEntityNames(util.ResolveNumericReferences(util.UnescapePunctuations(v)))
}

// lines is a block's raw lines, without the last line break.
func lines(src []byte, n ast.Node) string {
	var b strings.Builder
	ls := n.Lines()
	for i := range ls.Len() {
		seg := ls.At(i)
		b.Write(seg.Value(src))
	}
	return strings.TrimRight(b.String(), "\r\n")
}

// plainWriter builds the text: a separator asked for between blocks is
// written only before the next text, the longest one asked for winning and
// replacing the whitespace before it, so there is never one at the start
// or end, and a block or line never starts with spaces.
type plainWriter struct {
	buf     []byte
	pending string
}

func (w *plainWriter) breakWith(sep string) {
	if len(sep) > len(w.pending) {
		w.pending = sep
	}
}

func (w *plainWriter) write(s string) {
	if len(w.buf) == 0 || w.pending != "" {
		s = strings.TrimLeftFunc(s, unicode.IsSpace)
	}
	if s == "" {
		return
	}
	if w.pending != "" && len(w.buf) > 0 {
		w.buf = append(bytes.TrimRightFunc(w.buf, unicode.IsSpace), w.pending...)
	}
	w.pending = ""
	w.buf = append(w.buf, s...)
}

// inline writes a separator within a line (between table cells), in place
// of the spaces before it; none at the start of a line.
func (w *plainWriter) inline(sep string) {
	if w.pending != "" || len(w.buf) == 0 || w.buf[len(w.buf)-1] == '\n' {
		return
	}
	w.buf = append(bytes.TrimRight(w.buf, " \t"), sep...)
}

// atBreak reports whether the next text starts a block, a line or a cell,
// where whitespace between tags is not text.
func (w *plainWriter) atBreak() bool {
	return w.pending != "" || len(w.buf) == 0 || bytes.HasSuffix(w.buf, []byte("\n")) || bytes.HasSuffix(w.buf, []byte(" | "))
}

func (w *plainWriter) String() string { return string(bytes.TrimRightFunc(w.buf, unicode.IsSpace)) }

// code writes preformatted text as its own block inside a fence longer
// than any run of backticks in it.
func (w *plainWriter) code(info, body string) {
	if strings.TrimSpace(body) == "" {
		return
	}
	f := fence(body)
	w.breakWith("\n\n")
	w.write(f + info + "\n" + body + "\n" + f)
	w.breakWith("\n\n")
}

func fence(body string) string {
	longest, run := 0, 0
	for i := 0; i < len(body); i++ {
		if body[i] == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return strings.Repeat("`", max(3, longest+1))
}

var spaces = regexp.MustCompile(`\s+`)

// HTMLText extracts the visible text of an HTML document and its <title>.
// Block elements become paragraphs, list items and table rows lines, table
// cells are separated by " | ", <pre> is kept verbatim in a fence, other
// whitespace collapses as a browser collapses it, and script, style,
// noscript, template and svg content is dropped.
func HTMLText(data []byte) (text, title string) {
	z := html.NewTokenizer(bytes.NewReader(data))
	h := &htmlState{w: &plainWriter{}}
	for {
		tt := z.Next()
		if tt == html.ErrorToken {
			return h.w.String(), strings.TrimSpace(h.title.String())
		}
		name, _ := z.TagName()
		switch tt {
		case html.StartTagToken, html.SelfClosingTagToken:
			h.start(string(name), tt == html.StartTagToken)
		case html.EndTagToken:
			h.end(string(name))
		case html.TextToken:
			h.text(z.Text())
		}
	}
}

// htmlState is HTMLText's walk through the tokens.
type htmlState struct {
	w           *plainWriter
	title, pre  strings.Builder
	skip, inPre int
	inTitle     bool
	cells       int // cells so far in the current table row
}

func (h *htmlState) start(tag string, opens bool) {
	w := h.w
	switch {
	case skipTag(tag):
		if opens {
			h.skip++
		}
	case tag == "title":
		h.inTitle = true
	case h.skip > 0:
	case tag == "pre":
		if h.inPre == 0 {
			h.pre.Reset()
		}
		h.inPre++
	case tag == "br":
		if h.inPre > 0 {
			h.pre.WriteByte('\n')
		} else {
			w.write("\n")
		}
	case tag == "tr":
		w.breakWith("\n")
		h.cells = 0
	case tag == "td" || tag == "th":
		if h.cells > 0 {
			w.inline(" | ")
		}
		h.cells++
	case tag == "li" || tag == "dt" || tag == "dd":
		w.breakWith("\n")
	case blockTag(tag):
		w.breakWith("\n\n")
	}
}

func (h *htmlState) end(tag string) {
	switch {
	case skipTag(tag):
		if h.skip > 0 {
			h.skip--
		}
	case tag == "title":
		h.inTitle = false
	case tag == "pre" && h.inPre > 0:
		if h.inPre--; h.inPre == 0 {
			h.w.code("", strings.TrimRight(strings.TrimPrefix(h.pre.String(), "\n"), " \t\r\n"))
		}
	case tag == "tr" || tag == "li" || tag == "dt" || tag == "dd":
		h.w.breakWith("\n")
	case blockTag(tag):
		h.w.breakWith("\n\n")
	}
}

func (h *htmlState) text(b []byte) {
	switch {
	case h.inTitle:
		h.title.WriteString(spaces.ReplaceAllString(string(b), " "))
	case h.skip > 0:
	case h.inPre > 0:
		h.pre.Write(b)
	default:
		t := spaces.ReplaceAllString(string(b), " ")
		if t != " " || !h.w.atBreak() {
			h.w.write(t)
		}
	}
}

func skipTag(name string) bool {
	switch name {
	case "script", "style", "noscript", "template", "svg":
		return true
	}
	return false
}

func blockTag(name string) bool {
	switch name {
	case "p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
		"h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "table", "thead", "tbody", "tfoot",
		"caption", "blockquote", "hr", "dl", "figure", "figcaption", "body", "form", "fieldset", "address":
		return true
	}
	return false
}
