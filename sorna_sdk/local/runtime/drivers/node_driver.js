// Kernel driver for nodejs kernels: run as `node node_driver.js` by the Sorna local gateway.
// Control frames (4-byte big-endian length + UTF-8 JSON) travel over the socket whose fd is in
// SORNA_CTL_FD; input() replies arrive on the blocking pipe in SORNA_INPUT_FD so that input()
// can be synchronous. Code runs in one persistent vm context, so top-level bindings persist.
'use strict';
const fs = require('fs');
const net = require('net');
const util = require('util');
const vm = require('vm');
const childProcess = require('child_process');

const CTL = Number(process.env.SORNA_CTL_FD);
const INPUT = Number(process.env.SORNA_INPUT_FD);
delete process.env.SORNA_CTL_FD;
delete process.env.SORNA_INPUT_FD;
delete process.env.SORNA_GATEWAY_PID;
const pause = new Int32Array(new SharedArrayBuffer(4));

function dieWithGroup() {
  try { process.kill(-process.pid, 'SIGKILL'); } finally { process.exit(0); }
}

function writeAll(buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(CTL, buf, off, buf.length - off);
    } catch (e) {
      // The socket is non-blocking: wait while the gateway applies backpressure.
      if (e.code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 2); continue; }
      dieWithGroup();
    }
  }
}

function send(t, d) {
  const body = Buffer.from(JSON.stringify({ t, d: d === undefined ? null : d }), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length);
  writeAll(Buffer.concat([head, body]));
}

// Text goes out in frames of at most 64 Ki characters, as the python driver's do: the gateway
// refuses frames above its media cap, and one console.log of a huge string must not be one.
const CHUNK = 64 * 1024;

function out(kind) {
  return {
    write(s) {
      const text = String(s);
      for (let at = 0; at < text.length; at += CHUNK) send(kind, text.slice(at, at + CHUNK));
      return true;
    },
  };
}

function readExactly(n) {
  const buf = Buffer.alloc(n);
  let off = 0;
  while (off < n) {
    let got;
    try { got = fs.readSync(INPUT, buf, off, n - off, null); } catch (e) {
      if (e.code === 'EAGAIN') { Atomics.wait(pause, 0, 0, 5); continue; }
      throw e;
    }
    if (got === 0) dieWithGroup();
    off += got;
  }
  return buf;
}

function readInput(prompt, isPassword) {
  if (prompt) send('stdout', String(prompt));
  send('waiting-input', { is_password: Boolean(isPassword) });
  const size = readExactly(4).readUInt32BE(0);
  const msg = JSON.parse(readExactly(size).toString('utf8'));
  return String(msg.d == null ? '' : msg.d);
}

const sorna = {
  display_html(html) { send('html', String(html)); },
  display_media(mime, data) {
    const text = Buffer.isBuffer(data) ? data.toString('base64') : String(data);
    send('media', [String(mime), text]);
  },
  log(text) { send('log', String(text)); },
};

const kernelConsole = new console.Console({
  stdout: out('stdout'), stderr: out('stderr'), ignoreErrors: false,
});
const kernelProcess = {
  env: process.env, argv: process.argv.slice(0, 1), platform: process.platform,
  version: process.version, versions: process.versions, pid: process.pid,
  cwd: () => process.cwd(), hrtime: process.hrtime, nextTick: process.nextTick,
  memoryUsage: process.memoryUsage, stdout: out('stdout'), stderr: out('stderr'),
  exit() { throw new Error('process.exit() is disabled in this kernel'); },
};
const context = vm.createContext({
  console: kernelConsole, process: kernelProcess, require, Buffer, URL, TextEncoder, TextDecoder,
  setTimeout, setInterval, clearTimeout, clearInterval, setImmediate, clearImmediate,
  queueMicrotask, sorna,
  input: (prompt) => readInput(prompt, false),
  getpass: (prompt) => readInput(prompt === undefined ? 'Password: ' : prompt, true),
});

function formatError(err) {
  if (err && typeof err.stack === 'string') {
    const lines = err.stack.split('\n');
    const keep = lines.filter((l, i) => i === 0 || !/^\s+at /.test(l) || l.includes('<input>'));
    return keep.join('\n') + '\n';
  }
  return 'Uncaught ' + util.inspect(err) + '\n';
}

// An interrupt while a run awaits a promise ends the wait (synchronous code is stopped by
// breakOnSigint instead).
let interruptRun = null;

async function runCode(code) {
  try {
    const script = new vm.Script(code, { filename: '<input>' });
    const value = script.runInContext(context, { breakOnSigint: true });
    if (value && typeof value.then === 'function') {
      const interrupted = new Promise((resolve, reject) => {
        interruptRun = () => reject(new Error('Script execution was interrupted by `SIGINT`'));
      });
      await Promise.race([value, interrupted]);
    }
  } catch (err) {
    send('stderr', formatError(err));
  } finally {
    interruptRun = null;
  }
  return null;
}

function runShell(cmd) {
  const res = childProcess.spawnSync('bash', ['-c', cmd], { stdio: ['ignore', 'inherit', 'inherit'] });
  return { exitCode: res.status === null ? -1 : res.status };
}

const inbox = [];
let busy = false;

async function pump() {
  if (busy) return;
  busy = true;
  while (inbox.length) {
    const msg = inbox.shift();
    if (msg.t === 'configure') {
      if (msg.d && msg.d.cwd) process.chdir(msg.d.cwd);
      send('ready', { pid: process.pid });
    } else if (msg.t === 'complete') {
      send('completion', []);
    } else if (msg.t === 'exec') {
      send('finished', await runCode(String(msg.d || '')));
    } else if (msg.t === 'shell') {
      send('finished', runShell(String(msg.d || '')));
    }
  }
  busy = false;
}

process.on('SIGINT', () => { if (interruptRun) interruptRun(); });
process.on('uncaughtException', (err) => send('stderr', formatError(err)));
process.on('unhandledRejection', (err) => send('stderr', formatError(err)));

let pending = Buffer.alloc(0);
const sock = new net.Socket({ fd: CTL, readable: true, writable: false });
sock.on('data', (chunk) => {
  pending = Buffer.concat([pending, chunk]);
  while (pending.length >= 4) {
    const size = pending.readUInt32BE(0);
    if (pending.length < 4 + size) break;
    inbox.push(JSON.parse(pending.subarray(4, 4 + size).toString('utf8')));
    pending = pending.subarray(4 + size);
  }
  pump();
});
sock.on('end', dieWithGroup);
sock.on('close', dieWithGroup);
sock.on('error', dieWithGroup);
