package rag

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"unicode/utf8"
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
