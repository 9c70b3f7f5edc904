// Package ragindex is the `rag_index` stage kind: chunked documents
// embedded and indexed for retrieval.
package ragindex

import "github.com/llmlab/llmlab/stages"

// Kind is the rag_index stage kind.
var Kind = &stages.Static{
	KindName:    "rag_index",
	KindVersion: 1,
	OutputNames: []string{"index"},
	KindSchema: &stages.Schema{
		Attrs: []stages.Attr{
			stages.RefOrPathAttr("documents", true, "documents ({doc_id, title, text})"),
		},
		Blocks: []stages.Block{
			{Name: "chunk", Attrs: []stages.Attr{
				stages.Num("size", 200, "chunk length"),
				stages.Num("overlap", 40, "overlap between chunks"),
				stages.Str("unit", "words", "words or tokens", "words", "tokens"),
			}},
			{Name: "embedding", Attrs: []stages.Attr{
				stages.Str("kind", "bm25", "bm25, tfidf, hashing or model", "bm25", "tfidf", "hashing", "model"),
				stages.RefAttr("model", false, "embedding model (kind = model)"),
				stages.NumOpt("dim", "dense dimension"),
			}},
			{Name: "index", Attrs: []stages.Attr{
				stages.Str("kind", "flat", "flat or hnsw", "flat", "hnsw"),
				stages.Num("m", 16, "HNSW links per node"),
				stages.Num("ef_construction", 200, "HNSW build beam"),
			}},
		},
	},
}

func init() { stages.Register(Kind) }
