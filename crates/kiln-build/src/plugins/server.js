// Kiln's Node.js function server: loads handle(context, payload) from the function directory
// and serves it over HTTP with the standard library only, so an image needs nothing but nodejs.
"use strict";

const http = require("http");
const path = require("path");

const MAX_BODY = 6 * 1024 * 1024;
const FUNCTION_DIR = process.env.KILN_FUNCTION_DIR || "/function";
const MODULE = process.env.KILN_FUNCTION_MODULE || "handler";
const HANDLER = process.env.KILN_FUNCTION_HANDLER || "handle";

let handle = null;

// Required on the first call, so a broken module fails requests with a clear error instead
// of keeping the server from starting.
function loadHandler() {
  if (handle === null) {
    const module = require(path.join(FUNCTION_DIR, MODULE + ".js"));
    const fn = module[HANDLER];
    if (typeof fn !== "function") {
      throw new TypeError(`${MODULE}.js does not export a function ${HANDLER}`);
    }
    handle = fn;
  }
  return handle;
}

function reply(res, status, body, allow) {
  const data = Buffer.from(JSON.stringify(body === undefined ? null : body));
  const headers = { "Content-Type": "application/json", "Content-Length": data.length };
  if (allow) headers["Allow"] = allow;
  res.writeHead(status, headers);
  res.end(data);
}

const server = http.createServer((req, res) => {
  const url = req.url.split("?")[0];
  if (req.method === "GET" && url === "/healthz") {
    return reply(res, 200, { status: "ok" });
  }
  if (url !== "/") {
    return reply(res, 404, { error: "not found" });
  }
  if (req.method !== "POST") {
    // The wrong method on the function's one path, not a missing page.
    return reply(res, 405, { error: "the function answers POST / with a JSON body" }, "POST");
  }
  const declared = Number(req.headers["content-length"] || 0);
  if (declared > MAX_BODY) {
    res.setHeader("Connection", "close");
    return reply(res, 413, { error: `body larger than ${MAX_BODY} bytes` });
  }
  const chunks = [];
  let size = 0;
  let tooLarge = false;
  req.on("data", (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY) {
      tooLarge = true;
      res.setHeader("Connection", "close");
      reply(res, 413, { error: `body larger than ${MAX_BODY} bytes` });
      req.destroy();
      return;
    }
    chunks.push(chunk);
  });
  req.on("end", async () => {
    if (tooLarge) return;
    let request;
    try {
      const text = Buffer.concat(chunks).toString("utf8");
      request = JSON.parse(text === "" ? "null" : text);
      if (request === null || typeof request !== "object" || Array.isArray(request)) {
        throw new Error("body must be a JSON object with context and payload");
      }
    } catch (error) {
      return reply(res, 400, { error: `bad JSON body: ${error.message}` });
    }
    try {
      const result = await loadHandler()(request.context, request.payload);
      reply(res, 200, result);
    } catch (error) {
      console.error(error && error.stack ? error.stack : error);
      const type = error && error.constructor ? error.constructor.name : typeof error;
      reply(res, 500, { error: String(error && error.message !== undefined ? error.message : error), type });
    }
  });
});

function stop() {
  server.close(() => process.exit(0));
  // Idle keep-alive connections would hold close() open; do not wait for them forever.
  setTimeout(() => process.exit(0), 5000).unref();
  if (server.closeIdleConnections) server.closeIdleConnections();
}

process.on("SIGTERM", stop);
process.on("SIGINT", stop);

const host = process.env.KILN_LISTEN_HOST || "0.0.0.0";
const port = Number(process.env.PORT || 8080);
server.listen(port, host, () => {
  console.error(`kiln function server listening on ${host}:${port}`);
});
