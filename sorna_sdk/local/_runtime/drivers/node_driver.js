// Kernel driver for nodejs kernels: run as `node node_driver.js` by the Sorna local gateway.
// It speaks the driver protocol written down in sorna_sdk/local/_runtime/protocol.py, with its
// own copy of the frame codec (4-byte big-endian length + UTF-8 JSON {"t": kind, "d": data};
// the Python one is drivers/framing.py) and passes the same conformance test
// (tests/local/test_driver_conformance.py). Frames travel over the socket whose fd is in
// SORNA_CTL_FD; input() replies arrive on the blocking pipe in SORNA_INPUT_FD so that input()
// can be synchronous. Code runs in one persistent vm context, so top-level bindings persist.
// An `exec` frame's data is the code, or {"code", "options"} (no option is used here yet; unknown
// ones are ignored). A failed run's `finished` carries {"exitCode": 1, "error": {"name", "value",
// "traceback"}}: a thrown Error's name, message and stack lines (without the driver's frames),
// or for another thrown value "Error", its String() and the "Uncaught ..." line.
// process.exit(code) ends the run (not the kernel) with that exit status, as Python's
// SystemExit does: 0 is a success, no error object; process.exitCode set by the code is the
// status of a run that ends normally.
'use strict';
const fs = require('fs');
const net = require('net');
const util = require('util');
const vm = require('vm');
const childProcess = require('child_process');
const os = require('os');

const CTL = Number(process.env.SORNA_CTL_FD);
const INPUT = Number(process.env.SORNA_INPUT_FD);
delete process.env.SORNA_CTL_FD;
delete process.env.SORNA_INPUT_FD;
delete process.env.SORNA_GATEWAY_PID;
const pause = new Int32Array(new SharedArrayBuffer(4));
// The protocol's constants (framing.py has the same).
const MAX_FRAME = 256 * 1024 * 1024;
const TEXT_CHUNK = 64 * 1024;
const SIGINT_EXIT = 130;
const INTERRUPTED = { exitCode: SIGINT_EXIT };
// Seconds a shell job gets to end after SIGINT before its process group is killed.
const SHELL_GRACE_MS = 500;

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
// A cut never splits a UTF-16 surrogate pair (each frame must be valid text on its own).
function sendText(kind, text) {
  let at = 0;
  while (at < text.length) {
    let end = Math.min(at + TEXT_CHUNK, text.length);
    if (end < text.length) {
      const last = text.charCodeAt(end - 1);
      if (last >= 0xd800 && last <= 0xdbff) end -= 1;
    }
    send(kind, text.slice(at, end));
    at = end;
  }
}

function out(kind) {
  return {
    write(s) {
      sendText(kind, String(s));
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
  if (prompt) sendText('stdout', String(prompt));
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

// Thrown by the kernel's process.exit(): ends the run with an exit status.
class RunExit {
  constructor(code) { this.code = exitStatus(code); }
}

// The exit status process.exit() or process.exitCode gives: 0 for none, integers as node
// takes them (mod 256), 1 for anything else.
function exitStatus(code) {
  if (code === undefined || code === null) return 0;
  const n = Number(code);
  return Number.isInteger(n) ? ((n % 256) + 256) % 256 : 1;
}

function runEnd() {
  const code = exitStatus(kernelProcess.exitCode);
  kernelProcess.exitCode = undefined;
  return code ? { exitCode: code } : null;
}

const kernelConsole = new console.Console({
  stdout: out('stdout'), stderr: out('stderr'), ignoreErrors: false,
});
const kernelProcess = {
  env: process.env, argv: process.argv.slice(0, 1), platform: process.platform,
  version: process.version, versions: process.versions, pid: process.pid,
  cwd: () => process.cwd(), hrtime: process.hrtime, nextTick: process.nextTick,
  memoryUsage: process.memoryUsage, stdout: out('stdout'), stderr: out('stderr'),
  exitCode: undefined,
  exit(code) { throw new RunExit(code === undefined ? kernelProcess.exitCode : code); },
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

function safeString(value) {
  try { return String(value); } catch (e) { return util.inspect(value); }
}

// The protocol's error object of a thrown value; `text` is what went to stderr (formatError):
// its lines, each with its newline, are the traceback.
function errorObject(err, text) {
  const traceback = text.split(/(?<=\n)/);
  const isError = err !== null && typeof err === 'object' && typeof err.stack === 'string';
  if (isError) {
    let name = 'Error';
    let value = '';
    try { name = err.name == null ? 'Error' : safeString(err.name); } catch (e) { /* getter */ }
    try { value = err.message == null ? '' : safeString(err.message); } catch (e) { /* getter */ }
    return { name, value, traceback };
  }
  return { name: 'Error', value: safeString(err), traceback };
}

// `exec` data: the code as a string, or {"code": str, "options": {...}}.
function execRequest(d) {
  if (d !== null && typeof d === 'object' && !Array.isArray(d)) {
    const options = d.options !== null && typeof d.options === 'object' ? d.options : {};
    return { code: typeof d.code === 'string' ? d.code : '', options };
  }
  return { code: String(d == null ? '' : d), options: {} };
}

// An interrupt while a run awaits a promise ends the wait (synchronous code is stopped by
// breakOnSigint instead); an interrupt during a shell job signals the job's process group.
let interruptRun = null;
const INTERRUPTED_CODE = 'ERR_SCRIPT_EXECUTION_INTERRUPTED';

async function runCode(code, options) { // options: none is used yet
  try {
    const script = new vm.Script(code, { filename: '<input>' });
    const value = script.runInContext(context, { breakOnSigint: true });
    if (value && typeof value.then === 'function') {
      const interrupted = new Promise((resolve, reject) => {
        interruptRun = () => {
          const err = new Error('Script execution was interrupted by `SIGINT`');
          err.code = INTERRUPTED_CODE;
          reject(err);
        };
      });
      await Promise.race([value, interrupted]);
    }
  } catch (err) {
    if (err instanceof RunExit) {
      kernelProcess.exitCode = undefined;
      return err.code ? { exitCode: err.code } : null;
    }
    const text = formatError(err);
    sendText('stderr', text);
    kernelProcess.exitCode = undefined;
    if (err && err.code === INTERRUPTED_CODE) return INTERRUPTED;
    return { exitCode: 1, error: errorObject(err, text) };
  } finally {
    interruptRun = null;
  }
  return runEnd();
}

function runShell(cmd) {
  // A session (so a process group) of its own, as the python driver's jobs: SIGINT reaches
  // everything the job started, then SIGKILL.
  return new Promise((resolve) => {
    let interrupted = false;
    let child;
    try {
      child = childProcess.spawn('bash', ['-c', cmd], {
        stdio: ['ignore', 'inherit', 'inherit'], detached: true,
      });
    } catch (err) {
      sendText('stderr', formatError(err));
      resolve({ exitCode: 127 });
      return;
    }
    const signalJob = (sig) => { try { process.kill(-child.pid, sig); } catch (e) { /* gone */ } };
    interruptRun = () => {
      interrupted = true;
      signalJob('SIGINT');
      setTimeout(() => signalJob('SIGKILL'), SHELL_GRACE_MS).unref();
    };
    child.on('error', (err) => {
      interruptRun = null;
      sendText('stderr', formatError(err));
      resolve({ exitCode: 127 });
    });
    child.on('exit', (code, sig) => {
      interruptRun = null;
      if (interrupted) {
        signalJob('SIGKILL'); // whatever it left in its group
        resolve(INTERRUPTED);
      } else {
        resolve({ exitCode: code !== null ? code : 128 + (os.constants.signals[sig] || 0) });
      }
    });
  });
}

// Child processes write to fd 1/2 directly (raw output): a sync frame once one has ended puts
// that output where it belongs among the framed output.
function syncAfter(fn) {
  return function (...args) {
    try { return fn.apply(this, args); } finally { send('sync'); }
  };
}
for (const name of ['execSync', 'execFileSync', 'spawnSync']) {
  childProcess[name] = syncAfter(childProcess[name]);
}
const spawnChild = childProcess.ChildProcess.prototype.spawn;
childProcess.ChildProcess.prototype.spawn = function (...args) {
  const result = spawnChild.apply(this, args);
  this.once('exit', () => send('sync'));
  return result;
};

const inbox = [];
let busy = false;

function configure(opts) {
  try {
    if (opts && typeof opts.cwd === 'string' && opts.cwd) process.chdir(opts.cwd);
    if (opts && opts.environ && typeof opts.environ === 'object') {
      for (const [key, value] of Object.entries(opts.environ)) {
        if (!key.includes('=')) process.env[key] = String(value);
      }
    }
  } catch (err) {
    // No kernel: the gateway sees this line and the exit before any ready.
    sendText('stderr', formatError(err));
    process.exit(1);
  }
  send('ready', { pid: process.pid });
}

async function pump() {
  if (busy) return;
  busy = true;
  while (inbox.length) {
    const msg = inbox.shift();
    if (msg.t === 'configure') {
      configure(msg.d);
    } else if (msg.t === 'complete') {
      send('completion', []);
    } else if (msg.t === 'exec') {
      const { code, options } = execRequest(msg.d);
      send('finished', await runCode(code, options));
    } else if (msg.t === 'shell') {
      send('finished', await runShell(String(msg.d == null ? '' : msg.d)));
    } // unknown kinds are ignored (the protocol's rule)
  }
  busy = false;
}

process.on('SIGINT', () => { if (interruptRun) interruptRun(); });
process.on('uncaughtException', (err) => {
  if (!(err instanceof RunExit)) sendText('stderr', formatError(err)); // exit() after a run
});
process.on('unhandledRejection', (err) => {
  if (!(err instanceof RunExit)) sendText('stderr', formatError(err));
});

// The frame decoder: a length above MAX_FRAME, a body that is not JSON, or an object without a
// string kind make the channel unusable, and the driver ends (the protocol's rule).
let pending = Buffer.alloc(0);
function decode(chunk) {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= 4) {
    const size = pending.readUInt32BE(0);
    if (size > MAX_FRAME) dieWithGroup();
    if (pending.length < 4 + size) break;
    let msg;
    try { msg = JSON.parse(pending.subarray(4, 4 + size).toString('utf8')); } catch (e) {
      dieWithGroup();
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg) || typeof msg.t !== 'string') {
      dieWithGroup();
    }
    inbox.push({ t: msg.t, d: msg.d === undefined ? null : msg.d });
    pending = pending.subarray(4 + size);
  }
}

const sock = new net.Socket({ fd: CTL, readable: true, writable: false });
sock.on('data', (chunk) => {
  decode(chunk);
  pump();
});
sock.on('end', dieWithGroup);
sock.on('close', dieWithGroup);
sock.on('error', dieWithGroup);
