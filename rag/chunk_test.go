package rag

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestChunkerSplit(t *testing.T) {
	tests := []struct {
		name string
		c    Chunker
		text string
		want []string
	}{
		{"empty", Chunker{Size: 10}, "  \n\n ", nil},
		{"fits", Chunker{Size: 100}, "One. Two.", []string{"One. Two."}},
		{"sentences", Chunker{Size: 20}, "First one here. Second one here. Third.", []string{"First one here.", "Second one here.", "Third."}},
		{"paragraph kept together", Chunker{Size: 30}, "Para one.\n\nPara two is longer.", []string{"Para one.\n\nPara two is longer."}},
		{"paragraph boundary", Chunker{Size: 25}, "Alpha beta gamma.\n\nDelta epsilon zeta.", []string{"Alpha beta gamma.", "Delta epsilon zeta."}},
		{"overlap whole sentences", Chunker{Size: 24, Overlap: 8}, "Aa aa. Bb bb. Cc cc. Dd dd. Ee ee. Ff ff.", []string{"Aa aa. Bb bb. Cc cc.", "Cc cc. Dd dd. Ee ee.", "Ee ee. Ff ff."}},
		{"long word cut", Chunker{Size: 4}, "abcdefghij", []string{"abcd", "efgh", "ij"}},
		{"long sentence at words", Chunker{Size: 11}, "one two three four five", []string{"one two", "three four", "five"}},
		{"abbreviation", Chunker{Size: 20}, "See e.g. this. Dr. Who is here.", []string{"See e.g. this.", "Dr. Who is here."}},
		{"cjk", Chunker{Size: 4}, "你好。再见。", []string{"你好。", "再见。"}},
		{"whitespace collapsed", Chunker{Size: 50}, "a\n b\t c", []string{"a b c"}},
		{"code keeps lines", Chunker{Size: 100}, "Intro  text.\n\n```go\nfunc f() {\n\treturn a  *  b\n}\n```\n\nAfter.",
			[]string{"Intro text.\n\n```go\nfunc f() {\n\treturn a  *  b\n}\n```\n\nAfter."}},
		{"blank line inside code", Chunker{Size: 100}, "~~~\na\n\n  b   \n~~~", []string{"~~~\na\n\n  b\n~~~"}},
		{"code split between lines", Chunker{Size: 23}, "```\nline one\nline two\nline three\n```", []string{"```\nline one\nline two", "line three\n```"}},
		{"code after prose line", Chunker{Size: 100}, "Run:\n```\nmake  test\n```", []string{"Run:\n\n```\nmake  test\n```"}},
		{"long code line cut", Chunker{Size: 4}, "```\nabcdefghij\n```", []string{"```", "abcd", "efgh", "ij", "```"}},
		{"unterminated fence", Chunker{Size: 100}, "```\na\n\nb", []string{"```\na\n\nb"}},
		{"not a fence", Chunker{Size: 100}, "``a``\n\n    ```\nx  y", []string{"``a``\n\n``` x y"}},
		{"chunk never starts blank", Chunker{Size: 6, Overlap: 2}, "```\nab\n\n\ncd\n```", []string{"```\nab", "cd\n```"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.c.Split(tt.text)
			require.Equal(t, tt.want, got, "Split(%q)", tt.text)
		})
	}
}

func TestChunkerInvariants(t *testing.T) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. It was not amused! Why? ", 40) + "\n\n" + strings.Repeat("word ", 300)
	for _, c := range []Chunker{{Size: 50, Overlap: 0}, {Size: 200, Overlap: 50}, {Size: 800, Overlap: 100}} {
		chunks := c.Split(text)
		require.NotEmpty(t, chunks)
		for _, ch := range chunks {
			require.LessOrEqual(t, utf8.RuneCountInString(ch), c.Size, "chunk %q", ch)
			require.NotEmpty(t, strings.TrimSpace(ch))
		}
		// Every word of the input appears in order.
		joined := strings.Join(chunks, " ")
		require.Equal(t, len(strings.Fields(text)) <= len(strings.Fields(joined)), true)
	}
	require.ErrorIs(t, Chunker{Size: 10, Overlap: 10}.Validate(), ErrInvalidArgument)
	require.ErrorIs(t, Chunker{}.Validate(), ErrInvalidArgument)
}

func FuzzChunker(f *testing.F) {
	f.Add("Hello there. General Kenobi!\n\nYou are a bold one.", 20, 5)
	f.Add("你好。再见。", 3, 1)
	f.Add("x\n\n```go\nfunc f() {\n\n\treturn 1\n}\n```\n\ny", 12, 4)
	f.Add("~~~~\n  \n~~~\n~~~~", 2, 1)
	f.Fuzz(func(t *testing.T, text string, size, overlap int) {
		c := Chunker{Size: int(uint(size)%200) + 1}
		c.Overlap = int(uint(overlap) % uint(c.Size))
		for _, ch := range c.Split(text) {
			if n := utf8.RuneCountInString(ch); n > c.Size || strings.TrimSpace(ch) == "" {
				t.Fatalf("Split chunk %q: %d runes, size %d", ch, n, c.Size)
			}
		}
	})
}
