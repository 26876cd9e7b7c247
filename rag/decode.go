package rag

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/net/html"
)

// Document is one text to ingest. ID identifies it within a collection:
// ingesting the same ID again replaces its chunks.
type Document struct {
	ID       string   `json:"id"`
	Text     string   `json:"text"`
	Metadata Metadata `json:"metadata,omitempty"`
}

// Decoding errors; both wrap ErrInvalidArgument.
var (
	ErrUnsupportedFormat = fmt.Errorf("%w: unsupported document format", ErrInvalidArgument)
	ErrEmptyDocument     = fmt.Errorf("%w: empty document", ErrInvalidArgument)
)

// Extensions DecodeFile understands.
var Extensions = []string{".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl", ".ndjson"}

// DecodeFile turns a file's bytes into documents by extension: .txt as is,
// .md and .html to plain text, .json (an object or an array of objects)
// and .jsonl (one object a line) through DecodeJSON. name becomes the id
// of a single-document file and the "source" metadata of every document.
func DecodeFile(name string, data []byte, textField string) ([]Document, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: %s is not UTF-8 text", ErrUnsupportedFormat, name)
	}
	ext := strings.ToLower(path.Ext(name))
	var text string
	var md Metadata
	switch ext {
	case ".txt":
		text = string(data)
	case ".md", ".markdown":
		text = MarkdownText(string(data))
	case ".html", ".htm":
		var title string
		text, title = HTMLText(data)
		if title != "" {
			md = Metadata{"title": title}
		}
	case ".json", ".jsonl", ".ndjson":
		return DecodeJSON(name, data, textField)
	default:
		return nil, fmt.Errorf("%w: %s (want one of %s)", ErrUnsupportedFormat, name, strings.Join(Extensions, " "))
	}
	if strings.TrimSpace(text) == "" {
		return nil, fmt.Errorf("%s: %w", name, ErrEmptyDocument)
	}
	if md == nil {
		md = Metadata{}
	}
	md["source"] = name
	return []Document{{ID: name, Text: text, Metadata: md}}, nil
}

// DecodeJSON reads an object, an array of objects, or JSON lines. Each
// object's textField (default "text") is the text, "id" (string or number)
// the id (else name#N), "metadata" (an object) plus the other top-level
// scalar fields the metadata. An object without text is an error.
func DecodeJSON(name string, data []byte, textField string) ([]Document, error) {
	if textField == "" {
		textField = "text"
	}
	var objs []map[string]json.RawMessage
	trimmed := bytes.TrimSpace(data)
	switch {
	case len(trimmed) == 0:
		return nil, fmt.Errorf("%s: %w", name, ErrEmptyDocument)
	case trimmed[0] == '[':
		if err := json.Unmarshal(trimmed, &objs); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidArgument, name, err)
		}
	default:
		// One object, or one per line: a json.Decoder reads both.
		dec := json.NewDecoder(bufio.NewReader(bytes.NewReader(trimmed)))
		for {
			var o map[string]json.RawMessage
			err := dec.Decode(&o)
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("%w: %s: object %d: %v", ErrInvalidArgument, name, len(objs)+1, err)
			}
			objs = append(objs, o)
		}
	}
	docs := make([]Document, 0, len(objs))
	for i, o := range objs {
		d, err := jsonDocument(o, textField)
		if err != nil {
			return nil, fmt.Errorf("%s: object %d: %w", name, i+1, err)
		}
		if d.ID == "" {
			d.ID = name + "#" + strconv.Itoa(i+1)
		}
		d.Metadata["source"] = name
		docs = append(docs, d)
	}
	if len(docs) == 0 {
		return nil, fmt.Errorf("%s: %w", name, ErrEmptyDocument)
	}
	return docs, nil
}

func jsonDocument(o map[string]json.RawMessage, textField string) (Document, error) {
	if o == nil {
		return Document{}, fmt.Errorf("%w: not an object", ErrInvalidArgument)
	}
	var d Document
	raw, ok := o[textField]
	if !ok {
		return d, fmt.Errorf("%w: no %q field", ErrInvalidArgument, textField)
	}
	if err := json.Unmarshal(raw, &d.Text); err != nil {
		return d, fmt.Errorf("%w: %q is not a string", ErrInvalidArgument, textField)
	}
	if strings.TrimSpace(d.Text) == "" {
		return d, ErrEmptyDocument
	}
	if raw, ok := o["id"]; ok {
		var v any
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return d, fmt.Errorf("%w: id: %v", ErrInvalidArgument, err)
		}
		switch x := v.(type) {
		case string:
			d.ID = x
		case json.Number:
			d.ID = x.String()
		default:
			return d, fmt.Errorf("%w: id must be a string or number", ErrInvalidArgument)
		}
		if err := ValidateDocumentID(d.ID); err != nil {
			return d, err
		}
	}
	d.Metadata = Metadata{}
	if raw, ok := o["metadata"]; ok {
		var md Metadata
		if err := json.Unmarshal(raw, &md); err != nil {
			return d, fmt.Errorf("%w: metadata: %v", ErrInvalidArgument, err)
		}
		for k, v := range md {
			d.Metadata[k] = v
		}
	}
	for k, raw := range o {
		if k == textField || k == "id" || k == "metadata" {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) == nil {
			if _, ok := scalar(v); ok {
				d.Metadata[k] = v
			}
		}
	}
	if err := d.Metadata.Validate(); err != nil {
		return d, err
	}
	return d, nil
}

var (
	mdImage    = regexp.MustCompile(`!\[([^\]]*)\]\([^)]*\)`)
	mdLink     = regexp.MustCompile(`\[([^\]]+)\]\([^)]*\)`)
	mdEmphasis = regexp.MustCompile("(\\*\\*|__|\\*|`)")
	mdHeading  = regexp.MustCompile(`^\s{0,3}#{1,6}\s+`)
	mdList     = regexp.MustCompile(`^\s*([-*+]|\d+[.)])\s+`)
	mdQuote    = regexp.MustCompile(`^\s*>\s?`)
	mdRule     = regexp.MustCompile(`^\s{0,3}([-*_]\s*){3,}$`)
)

// MarkdownText strips Markdown syntax: headings, emphasis, link and image
// targets, list and quote markers, fences (their code is kept). Headings
// become their own paragraphs so the chunker breaks there.
func MarkdownText(src string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n") {
		t := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(t, "```") || strings.HasPrefix(t, "~~~"):
			b.WriteString("\n")
			continue
		case mdRule.MatchString(line):
			b.WriteString("\n")
			continue
		case mdHeading.MatchString(line):
			line = "\n" + mdHeading.ReplaceAllString(line, "") + "\n"
		}
		line = mdQuote.ReplaceAllString(line, "")
		line = mdList.ReplaceAllString(line, "")
		line = mdImage.ReplaceAllString(line, "$1")
		line = mdLink.ReplaceAllString(line, "$1")
		line = mdEmphasis.ReplaceAllString(line, "")
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return strings.TrimSpace(b.String())
}

// HTMLText extracts the visible text of an HTML document and its <title>.
// Block elements become paragraph breaks; script, style, noscript,
// template and svg content is dropped.
func HTMLText(data []byte) (text, title string) {
	z := html.NewTokenizer(bytes.NewReader(data))
	var b strings.Builder
	skip := 0
	inTitle := false
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return strings.TrimSpace(collapseBlankLines(b.String())), strings.TrimSpace(title)
		case html.StartTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "noscript", "template", "svg":
				if tt == html.StartTagToken {
					skip++
				}
			case "title":
				inTitle = true
			case "br":
				b.WriteByte('\n')
			default:
				if blockTag(string(name)) {
					b.WriteString("\n\n")
				}
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "script", "style", "noscript", "template", "svg":
				if skip > 0 {
					skip--
				}
			case "title":
				inTitle = false
			default:
				if blockTag(string(name)) {
					b.WriteString("\n\n")
				}
			}
		case html.TextToken:
			if inTitle {
				title += string(z.Text())
				continue
			}
			if skip == 0 {
				b.Write(z.Text())
			}
		}
	}
}

func blockTag(name string) bool {
	switch name {
	case "p", "div", "section", "article", "header", "footer", "main", "aside", "nav",
		"h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "table", "tr", "blockquote",
		"pre", "hr", "dl", "dt", "dd", "figure", "figcaption", "body":
		return true
	}
	return false
}

var blankLines = regexp.MustCompile(`\n[ \t]*\n(\s*\n)*`)

func collapseBlankLines(s string) string { return blankLines.ReplaceAllString(s, "\n\n") }
