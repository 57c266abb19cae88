package web

import (
	"embed"
	"html/template"
	"io/fs"
	"net/http"
	"strings"

	"github.com/paybridge/paybridge/bridge"
)

//go:embed static
var staticFS embed.FS

// staticFiles serves the embedded assets under /static/: files only (no listings), and a
// missing one answers with the error envelope like everything else.
func (s *Server) staticFiles() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fileServer := http.StripPrefix("/static/", http.FileServerFS(sub))
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if st, err := fs.Stat(sub, name); name == "" || err != nil || st.IsDir() {
			return bridge.Errorf(bridge.CodeValidationError, "No static file %q.", name).
				WithFix("Static files are under /static/, e.g. /static/paybridge.js.")
		}
		w.Header().Set("Cache-Control", "no-cache")
		if strings.HasSuffix(name, ".ts") { // paybridge.d.ts: the system's MIME table may say video/mp2t or Qt Linguist
			w.Header().Set("Content-Type", "application/typescript; charset=utf-8")
		}
		fileServer.ServeHTTP(w, r)
		return nil
	})
}

// errorDocsPage renders every code of the catalog, one anchor per code, so every docs link in an
// error body resolves to its own section.
var errorDocsPage = template.Must(template.New("codes").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>paybridge error codes</title><link rel="stylesheet" href="/static/style.css"></head>
<body><main>
<h1>Error codes</h1>
<p class="lede">Every error paybridge returns is JSON with <code>error</code>, <code>code</code>, <code>fix</code> and
<code>docs</code> (plus <code>param</code> when one field is at fault, and <code>requestId</code>), and every response carries an
<code>X-Request-Id</code> header: give it to your paybridge operator, who finds every log line of the request by it.
{{len .}} codes in all.</p>
<table class="codes"><thead><tr><th>Code</th><th>HTTP</th><th>Description</th></tr></thead><tbody>
{{range .}}<tr><td><a href="#{{.Code}}"><code>{{.Code}}</code></a></td><td>{{.Status}}</td><td>{{.Description}}</td></tr>
{{end}}</tbody></table>
{{range .}}<section class="code" id="{{.Code}}">
<h2><span class="status">{{.Status}}</span><code>{{.Code}}</code></h2>
<p>{{.Meaning}}</p>
<p><strong>Common causes</strong></p><ul>{{range .Causes}}<li>{{.}}</li>{{end}}</ul>
<p class="fix"><strong>Fix:</strong> {{.Fix}}</p>
</section>
{{end}}</main></body></html>
`))

func (s *Server) errorCodeDocs(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	return errorDocsPage.Execute(w, bridge.Catalog())
}
