// The netdsl extension's client: starts `netdsl lsp` (stdio) for .net files.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace
    .getConfiguration("netdsl")
    .get("server.command", ["netdsl", "lsp"]);
  const server = { command, args };
  client = new LanguageClient(
    "netdsl",
    "netdsl language server",
    { run: server, debug: server },
    { documentSelector: [{ scheme: "file", language: "netdsl" }, { scheme: "untitled", language: "netdsl" }] }
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
