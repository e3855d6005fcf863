// Preloaded (NODE_OPTIONS=--require) by tests/azcli/test_javascript.py: loopback only.
// `*.localhost` names resolve to 127.0.0.1 (glibc here does not resolve them; a user's /etc/hosts
// line would), every other name and every non-loopback address is refused at once and logged to
// $STRONGROOM_EGRESS_LOG. The SDKs themselves are not touched.
"use strict";
const dns = require("dns");
const fs = require("fs");
const net = require("net");

const log = process.env.STRONGROOM_EGRESS_LOG;
const realLookup = dns.lookup;

function refuse(what) {
  if (log) fs.appendFileSync(log, what + "\n");
}

function isLoopback(host) {
  return host === "localhost" || host === "::1" || /^127\./.test(host);
}

dns.lookup = function lookup(hostname, options, callback) {
  if (typeof options === "function") {
    callback = options;
    options = {};
  }
  const name = String(hostname || "").toLowerCase().replace(/\.$/, "");
  if (isLoopback(name)) return realLookup.call(dns, hostname, options, callback);
  if (name.endsWith(".localhost")) return realLookup.call(dns, "127.0.0.1", options, callback);
  refuse("resolve " + name);
  const err = new Error(`getaddrinfo ENOTFOUND ${name} (refused by the test's loopback-only guard)`);
  err.code = "ENOTFOUND";
  process.nextTick(callback, err);
};

const realConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(...args) {
  const opts = typeof args[0] === "object" && args[0] !== null ? args[0] : { host: args[1] };
  const host = opts && opts.host;
  if (host && net.isIP(host) && !isLoopback(host)) {
    refuse("connect " + host);
    throw new Error(`${host}: refused by the test's loopback-only guard`);
  }
  return realConnect.apply(this, args);
};
