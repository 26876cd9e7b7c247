package rag

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeFile(t *testing.T) {
	tests := []struct {
		name, file, data string
		want             []Document
		err              error
	}{
		{"txt", "a.txt", "hello\n\nworld", []Document{{ID: "a.txt", Text: "hello\n\nworld", Metadata: Metadata{"source": "a.txt"}}}, nil},
		{"md", "d/a.md", "# Title\nSome **bold** [link](http://x) and `code`.\n- item", []Document{{ID: "d/a.md", Text: "Title\n\nSome bold link and code.\n\nitem", Metadata: Metadata{"source": "d/a.md"}}}, nil},
		{"html", "p.html", "<html><head><title>T</title><style>x{}</style></head><body><p>One</p><script>bad()</script><div>Two<br>three</div></body></html>",
			[]Document{{ID: "p.html", Text: "One\n\nTwo\nthree", Metadata: Metadata{"source": "p.html", "title": "T"}}}, nil},
		{"json array", "x.json", `[{"id":"k1","text":"t1","lang":"en","metadata":{"n":1}},{"text":"t2"}]`,
			[]Document{{ID: "k1", Text: "t1", Metadata: Metadata{"lang": "en", "n": 1.0, "source": "x.json"}}, {ID: "x.json#2", Text: "t2", Metadata: Metadata{"source": "x.json"}}}, nil},
		{"jsonl", "x.jsonl", "{\"id\":7,\"text\":\"a\"}\n{\"text\":\"b\"}\n",
			[]Document{{ID: "7", Text: "a", Metadata: Metadata{"source": "x.jsonl"}}, {ID: "x.jsonl#2", Text: "b", Metadata: Metadata{"source": "x.jsonl"}}}, nil},
		{"empty txt", "e.txt", "  \n", nil, ErrEmptyDocument},
		{"json no text", "x.json", `{"body":"a"}`, nil, ErrInvalidArgument},
		{"json bad", "x.json", `{"text":`, nil, ErrInvalidArgument},
		{"unknown ext", "x.pdf", "%PDF", nil, ErrUnsupportedFormat},
		{"not utf8", "x.txt", "\xff\xfe", nil, ErrUnsupportedFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeFile(tt.file, []byte(tt.data), "")
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func FuzzDecodeFile(f *testing.F) {
	for _, s := range []string{"# h\n*x*", "<p>a<script>b</script>", `[{"text":"a","id":1}]`, "{\"text\":\"a\"}\n{\"text\":\"b\"}", "plain"} {
		f.Add(s, uint8(0))
	}
	exts := []string{".txt", ".md", ".html", ".json", ".jsonl"}
	f.Fuzz(func(t *testing.T, data string, e uint8) {
		docs, err := DecodeFile("f"+exts[int(e)%len(exts)], []byte(data), "")
		if err != nil {
			return
		}
		for _, d := range docs {
			if ValidateDocumentID(d.ID) != nil || d.Metadata.Validate() != nil {
				t.Fatalf("decoded an invalid document %+v", d)
			}
		}
	})
}

func FuzzParseFilter(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, `{"a":[1,2]}`, `{"a":{"b":1}}`, `{"a":[]}`, `null`, `[1]`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		flt, err := ParseFilter([]byte(data))
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidFilter)
			return
		}
		m, err := flt.Compile()
		require.NoError(t, err)
		m.Match(Metadata{"a": "b"})
	})
}
