package rag

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Chunker splits text into chunks of at most Size runes whose consecutive
// chunks share up to Overlap runes of whole sentences. It breaks between
// paragraphs (blank lines) first, then between sentences, then between
// words; a single word longer than Size is cut. Whitespace in prose
// collapses to single spaces; a code block fenced with ``` or ~~~ (as
// MarkdownText and HTMLText write code and <pre>) is one paragraph, blank
// lines included, that keeps its line breaks and indentation and breaks
// between lines (a line longer than Size is cut).
type Chunker struct {
	Size    int
	Overlap int
}

// Validate requires 0 < Size and 0 ≤ Overlap < Size.
func (c Chunker) Validate() error {
	if c.Size <= 0 || c.Overlap < 0 || c.Overlap >= c.Size {
		return fmt.Errorf("%w: chunk size %d, overlap %d (want size > 0 and 0 <= overlap < size)", ErrInvalidArgument, c.Size, c.Overlap)
	}
	return nil
}

// unit is a sentence (or a piece of an oversized one) or a line of code;
// paraStart marks the first unit of a paragraph, line a code line after
// the first (joined to the one before by a line break).
type unit struct {
	text      string
	runes     int
	paraStart bool
	line      bool
}

func (u unit) blank() bool { return strings.TrimSpace(u.text) == "" }

// Split returns the chunks of text, in order; empty text gives none.
func (c Chunker) Split(text string) []string {
	if c.Size <= 0 {
		return nil
	}
	var (
		chunks []string
		cur    []unit // the chunk being built: carried overlap, then fresh units
		curLen int    // its length in runes, separators included
		fresh  int    // units in cur not carried from the previous chunk
	)
	emit := func() {
		chunks = append(chunks, joinUnits(cur))
		// Carry whole trailing sentences, up to Overlap runes, never the
		// whole chunk (the next one must advance).
		keep, n := 0, 0
		for i := len(cur) - 1; i > 0; i-- {
			add := cur[i].runes + sep(cur[i], keep == 0)
			if n+add > c.Overlap {
				break
			}
			n += add
			keep++
		}
		cur = append([]unit(nil), cur[len(cur)-keep:]...)
		for len(cur) > 0 && cur[0].blank() {
			cur = cur[1:] // no chunk starts with a blank code line
		}
		curLen, fresh = length(cur), 0
	}
	for _, u := range c.units(text) {
		if len(cur) > 0 && curLen+sep(u, false)+u.runes > c.Size {
			if fresh > 0 {
				emit()
			}
			if len(cur) > 0 && curLen+sep(u, false)+u.runes > c.Size {
				cur, curLen = cur[:0], 0 // the overlap does not fit with u: drop it
			}
		}
		if len(cur) == 0 && u.blank() {
			continue
		}
		curLen += sep(u, len(cur) == 0) + u.runes
		cur = append(cur, u)
		if !u.blank() {
			fresh++ // a chunk of overlap and blank lines only is not emitted
		}
	}
	if fresh > 0 {
		chunks = append(chunks, joinUnits(cur))
	}
	return chunks
}

// sep is the separator length before u: none first, a blank line before a
// paragraph, a space otherwise.
func sep(u unit, first bool) int {
	switch {
	case first:
		return 0
	case u.paraStart:
		return 2
	}
	return 1
}

func length(us []unit) int {
	n := 0
	for i, u := range us {
		n += sep(u, i == 0) + u.runes
	}
	return n
}

func joinUnits(us []unit) string {
	var b strings.Builder
	for i, u := range us {
		if i > 0 {
			switch {
			case u.paraStart:
				b.WriteString("\n\n")
			case u.line:
				b.WriteByte('\n')
			default:
				b.WriteByte(' ')
			}
		}
		b.WriteString(u.text)
	}
	return strings.TrimRightFunc(b.String(), unicode.IsSpace) // blank code lines at the end
}

// units splits text into paragraphs, then prose into sentences and
// pieces of at most Size runes, code into lines.
func (c Chunker) units(text string) []unit {
	var out []unit
	for _, para := range paragraphs(text) {
		if para.code != nil {
			for i, line := range para.code {
				for j, piece := range c.cut(line) {
					out = append(out, unit{text: piece, runes: utf8.RuneCountInString(piece), paraStart: i == 0 && j == 0, line: i > 0 || j > 0})
				}
			}
			continue
		}
		first := true
		for _, s := range sentences(para.prose) {
			for _, piece := range c.pieces(s) {
				out = append(out, unit{text: piece, runes: utf8.RuneCountInString(piece), paraStart: first})
				first = false
			}
		}
	}
	return out
}

// paragraph is prose, its whitespace collapsed, or the lines of a fenced
// code block, fences included, trailing whitespace trimmed.
type paragraph struct {
	prose string
	code  []string
}

// paragraphs splits text on blank lines outside code fences. A fence is a
// line of three or more backticks or tildes indented by at most three
// spaces; the block ends at a line of at least as many of the same
// character, or at the end of the text.
func paragraphs(text string) []paragraph {
	var (
		out   []paragraph
		prose []string
		code  []string
		close string // the closing fence's prefix while in code
	)
	flush := func() {
		if p := strings.Join(strings.Fields(strings.Join(prose, " ")), " "); p != "" {
			out = append(out, paragraph{prose: p})
		}
		prose = prose[:0]
	}
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimRightFunc(line, unicode.IsSpace)
		if close != "" {
			code = append(code, line)
			if t := strings.TrimLeft(line, " "); len(line)-len(t) <= 3 && strings.HasPrefix(t, close) && strings.Trim(t, close[:1]) == "" {
				out = append(out, paragraph{code: code})
				code, close = nil, ""
			}
			continue
		}
		if f := openFence(line); f != "" {
			flush()
			code, close = []string{line}, f
			continue
		}
		if strings.TrimSpace(line) == "" {
			flush()
			continue
		}
		prose = append(prose, line)
	}
	flush()
	if code != nil {
		out = append(out, paragraph{code: code}) // unterminated: to the end
	}
	return out
}

// openFence returns the fence that line opens ("```", "~~~~"), or "".
func openFence(line string) string {
	t := strings.TrimLeft(line, " ")
	if len(line)-len(t) > 3 || len(t) < 3 || (t[0] != '`' && t[0] != '~') {
		return ""
	}
	n := len(t) - len(strings.TrimLeft(t, t[:1]))
	if n < 3 || (t[0] == '`' && strings.Contains(t[n:], "`")) {
		return ""
	}
	return t[:n]
}

// cut cuts a code line longer than Size at rune boundaries.
func (c Chunker) cut(line string) []string {
	out := []string{}
	for utf8.RuneCountInString(line) > c.Size {
		i := runeOffset(line, c.Size)
		out = append(out, line[:i])
		line = line[i:]
	}
	return append(out, line)
}

// sentences splits after '.', '!', '?' (and their CJK forms) followed by a
// space, keeping the punctuation. A period after a single capital letter or
// a common abbreviation does not end a sentence.
func sentences(p string) []string {
	var out []string
	start := 0
	for i, r := range p {
		if i < start {
			continue // absorbed into the previous sentence
		}
		switch r {
		case '。', '！', '？':
			end := i + utf8.RuneLen(r)
			out = append(out, strings.TrimSpace(p[start:end]))
			start = end
			continue
		case '.', '!', '?':
		default:
			continue
		}
		end := i + 1
		// Absorb closing quotes/brackets and repeated punctuation.
		for end < len(p) && strings.IndexByte(`"')]?!.`, p[end]) >= 0 {
			end++
		}
		if end < len(p) && p[end] != ' ' {
			continue
		}
		if r == '.' && abbreviation(p[start:i]) {
			continue
		}
		if s := strings.TrimSpace(p[start:end]); s != "" {
			out = append(out, s)
		}
		start = end
	}
	if s := strings.TrimSpace(p[start:]); s != "" {
		out = append(out, s)
	}
	return out
}

func abbreviation(before string) bool {
	w := before[strings.LastIndexByte(before, ' ')+1:]
	if utf8.RuneCountInString(w) == 1 {
		r, _ := utf8.DecodeRuneInString(w)
		return unicode.IsUpper(r)
	}
	switch strings.ToLower(w) {
	case "e.g", "i.e", "etc", "mr", "mrs", "ms", "dr", "prof", "vs", "fig", "no", "st":
		return true
	}
	return false
}

// pieces cuts a sentence longer than Size at word boundaries, and a word
// longer than Size at rune boundaries.
func (c Chunker) pieces(s string) []string {
	if utf8.RuneCountInString(s) <= c.Size {
		return []string{s}
	}
	var out []string
	var cur strings.Builder
	curLen := 0
	for _, w := range strings.Fields(s) {
		wl := utf8.RuneCountInString(w)
		for wl > c.Size {
			if curLen > 0 {
				out = append(out, cur.String())
				cur.Reset()
				curLen = 0
			}
			cut := runeOffset(w, c.Size)
			out = append(out, w[:cut])
			w = w[cut:]
			wl -= c.Size
		}
		if wl == 0 {
			continue
		}
		if curLen > 0 && curLen+1+wl > c.Size {
			out = append(out, cur.String())
			cur.Reset()
			curLen = 0
		}
		if curLen > 0 {
			cur.WriteByte(' ')
			curLen++
		}
		cur.WriteString(w)
		curLen += wl
	}
	if curLen > 0 {
		out = append(out, cur.String())
	}
	return out
}

func runeOffset(s string, n int) int {
	for i := range s {
		if n == 0 {
			return i
		}
		n--
	}
	return len(s)
}
