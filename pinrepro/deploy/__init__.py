"""Image references outside Dockerfiles: compose, Kubernetes, Kustomize, Helm values, workflows, devcontainers.

The package is layered like the rest of pinrepro, each module depending only on the ones above it:

- ``discovery``: which files are deployment files (the ``deploy_files`` globs) and what kind each one is.
  ``find_deploy_files(root, globs)`` and ``file_kind(name)`` are meant for reuse (``pinrepro check`` reads the
  same files).
- ``yamlread``: the one reader of YAML / JSON deployment files. ``read_documents(root, name)`` yields each
  document as a ``YamlDocument`` whose nodes carry their character offsets and lines (PyYAML's composed node
  graph), plus helpers to walk mappings (merge keys included) and to turn a node into plain Python data.
- ``extract``: per format, the image references a file names (``DeploySite``) and where a digest would go.
- ``rewrite``: splices digests into the text and re-parses it to prove that only the references changed;
  the document is never re-serialised, so comments, quotes, anchors, key order, indentation and CRLF stay.
- ``scan``: the entry point the commands use - every deployment file of a project, its sites and findings.
"""
