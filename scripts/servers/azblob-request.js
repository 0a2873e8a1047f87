// One Azure Blob REST request signed with Shared Key (the storage account key), for start-azure.sh: creates the
// test container and proves the emulator refuses a wrong key. Prints the HTTP status.
// Usage: node azblob-request.js METHOD URL ACCOUNT KEY_BASE64
"use strict";
const crypto = require("crypto");
const http = require("http");

const [method, url, account, key] = process.argv.slice(2);
const u = new URL(url);
const date = new Date().toUTCString();
const version = "2021-08-06";
const headers = { "x-ms-date": date, "x-ms-version": version, "Content-Length": "0" };
// Canonicalized resource: /account/path, then each query parameter as "\nname:value", sorted by name.
const params = [...u.searchParams.entries()].sort(([a], [b]) => a.localeCompare(b));
const resource = `/${account}${u.pathname}` + params.map(([k, v]) => `\n${k.toLowerCase()}:${v}`).join("");
// Content-Length is signed as "" when it is 0 (every request here has no body).
const toSign = [method, "", "", "", "", "", "", "", "", "", "", "",
  `x-ms-date:${date}\nx-ms-version:${version}`, resource].join("\n");
const sig = crypto.createHmac("sha256", Buffer.from(key, "base64")).update(toSign, "utf8").digest("base64");
headers.Authorization = `SharedKey ${account}:${sig}`;
const req = http.request(u, { method, headers }, (res) => {
  res.resume();
  res.on("end", () => console.log(res.statusCode));
});
req.on("error", (e) => { console.error(e.message); process.exit(1); });
req.end();
