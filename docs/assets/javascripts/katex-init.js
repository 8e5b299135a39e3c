// Typeset the math that pymdownx.arithmatex (generic mode) leaves in the page, with the
// KaTeX copy vendored in assets/katex/ (no CDN). Material's document$ re-runs it on
// instant navigation.
document$.subscribe(({ body }) => {
  renderMathInElement(body, {
    delimiters: [
      { left: "$$", right: "$$", display: true },
      { left: "$", right: "$", display: false },
      { left: "\\(", right: "\\)", display: false },
      { left: "\\[", right: "\\]", display: true },
    ],
    throwOnError: false,
  });
});
