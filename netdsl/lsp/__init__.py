"""The language server (``netdsl lsp``): what the checker knows, shown in an editor as the user
types. Torch-free, like ``netdsl check``; built on pygls (the optional extra ``lsp``).

``analysis`` compiles a document as ``netdsl check`` does (imports cached by path and
modification time; ``incremental`` re-parses only the statements an edit changed, and keeps
the previous check when the syntax tree did not change), ``figures`` maps source text to the
graph's nodes and their figures, ``convert`` turns spans and errors into LSP ranges and diagnostics,
``locate`` finds the syntax node under the cursor and what a name refers to, ``hover``,
``completion`` and ``outline`` (symbols, inlay hints) answer requests, and ``server`` wires
them to pygls. Every module but ``server`` is plain functions over lsprotocol types, so the
logic is testable without a client.
"""
