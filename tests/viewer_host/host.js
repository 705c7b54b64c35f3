// The test host page's script: embeds the viewer the way an MCP Apps host does, with the official host
// side of the protocol (AppBridge from @modelcontextprotocol/ext-apps, pinned in package-lock.json).
// tests/test_viewer_browser.py bundles it with esbuild and drives it through `window.viewerHost`.
//
// Tool calls from the viewer go to `window.callServerTool(name, args)`, a function the Python test
// exposes to the page: it calls the real server through an MCP client and answers with the wire JSON
// of the CallToolResult.

import { AppBridge, PostMessageTransport } from "@modelcontextprotocol/ext-apps/app-bridge";

const HOST_INFO = { name: "scenario-upscale-test-host", version: "1.0.0" };
// What the host offers the view: calling the server's tools (the viewer needs nothing else).
const HOST_CAPABILITIES = { serverTools: {} };

let bridge = null;
let iframe = null;

// What happened, for the test to read: the view's tool calls, size changes, initialisation.
const events = [];

async function mount({ html, hostContext }) {
  iframe = document.createElement("iframe");
  // As hosts do: scripts only, an opaque origin (no allow-same-origin), the HTML given inline.
  iframe.setAttribute("sandbox", "allow-scripts");
  iframe.title = "Scenario upscale viewer";
  iframe.style.cssText = "width: 100%; height: 200px; border: 0; display: block;";
  document.getElementById("chat").appendChild(iframe);

  bridge = new AppBridge(null, HOST_INFO, HOST_CAPABILITIES, { hostContext });
  bridge.oncalltool = async (params) => {
    const call = { type: "tools/call", name: params.name, arguments: params.arguments ?? {} };
    events.push(call);
    const result = await window.callServerTool(params.name, params.arguments ?? {});
    call.done = true;
    return result;
  };
  bridge.onsizechange = ({ height }) => {
    events.push({ type: "size-changed", height });
    if (typeof height === "number") iframe.style.height = `${height}px`;
  };
  const initialized = new Promise((resolve) => {
    bridge.oninitialized = () => {
      events.push({ type: "initialized" });
      resolve();
    };
  });
  // Connected before the document loads, so the view's ui/initialize finds the bridge listening.
  await bridge.connect(new PostMessageTransport(iframe.contentWindow, iframe.contentWindow));
  iframe.srcdoc = html;
  await initialized;
  return { appVersion: bridge.getAppVersion(), appCapabilities: bridge.getAppCapabilities() };
}

window.viewerHost = {
  events,
  mount,
  sendToolInput: (args) => bridge.sendToolInput({ arguments: args }),
  sendToolResult: (result) => bridge.sendToolResult(result),
  setHostContext: (context) => bridge.setHostContext(context),
  iframeHeight: () => iframe.getBoundingClientRect().height,
};
