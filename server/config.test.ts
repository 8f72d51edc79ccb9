import { generateKeyPairSync } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ConfigError,
  defaultText,
  GROUPS,
  helpText,
  hostPort,
  OPTIONS,
  type OptionSpec,
  optionLabel,
  parseConfig,
  type ServerConfig,
} from './config.js';

type Env = Record<string, string | undefined>;

function parsed(argv: string[], env: Env = {}): { config: ServerConfig; warnings: string[] } {
  const result = parseConfig(argv, env);
  if ('help' in result) throw new Error('expected a configuration, got help');
  return result;
}

function configError(argv: string[], env: Env = {}): ConfigError {
  try {
    parseConfig(argv, env);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

function spec(key: OptionSpec['key']): OptionSpec {
  const found = OPTIONS.find((o) => o.key === key);
  if (!found) throw new Error(`no option ${key}`);
  return found;
}

/** A secret-safe temp dir: files default to mode 0600. */
const dir = mkdtempSync(join(tmpdir(), 'redlease-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
function file(name: string, contents: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, contents, { mode });
  chmodSync(path, mode); // the umask may have narrowed it
  return path;
}

// A self-signed P-256 certificate for localhost, valid until 2126. Test-only: it protects nothing.
const CERT = `-----BEGIN CERTIFICATE-----
MIIBnDCCAUGgAwIBAgIUJAXR2UrPfaJWNtwFW44r5Rw/e9swCgYIKoZIzj0EAwIw
FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTEyNzE2MDgyMFoYDzIxMjYxMTAz
MTYwODIwWjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
PQMBBwNCAASgYaGLvqSHH5cVdRhYRGJAKIs0bje+S2r8FataD90MhmptxJAfd76I
4mW7k4Dq61keNB4c/HKSZYUF+uoVDAsSo28wbTAdBgNVHQ4EFgQUlIRqYsrrg1vT
LUKUgr6cDqQCA9cwHwYDVR0jBBgwFoAUlIRqYsrrg1vTLUKUgr6cDqQCA9cwDwYD
VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
zj0EAwIDSQAwRgIhAOiIdFCCKxiw/SPBXs+TzgFykWcTTQCpJEUA65YRG02QAiEA
vgUMf+miWtLBIf5rtEpqXVSx8qGKkf/UQEt3Dg0KJnY=
-----END CERTIFICATE-----
`;
const KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgvPIOV+cmo0Uc/dgU
ovp/ecAVywp/fdeIpDcFVWArBEqhRANCAASgYaGLvqSHH5cVdRhYRGJAKIs0bje+
S2r8FataD90MhmptxJAfd76I4mW7k4Dq61keNB4c/HKSZYUF+uoVDAsS
-----END PRIVATE KEY-----
`;

describe('defaults', () => {
  it('fit three local Redis nodes on 6381–6383 and gRPC on 127.0.0.1:50051, without warnings', () => {
    const { config, warnings } = parsed([]);
    expect(config).toEqual({
      nodes: ['127.0.0.1:6381', '127.0.0.1:6382', '127.0.0.1:6383'],
      grpcHost: '127.0.0.1',
      grpcPort: 50051,
      httpHost: '127.0.0.1',
      httpPort: 8000,
      mode: 'redlock',
      defaultTtlMs: 30_000,
      minTtlMs: 100,
      maxTtlMs: 60_000,
      nodeTimeoutMs: 100,
      connectTimeoutMs: 1_000,
      healthIntervalMs: 1_000,
      retryCount: 2,
      retryDelayMs: 50,
      retryJitterMs: 100,
      keyPrefix: 'lk:',
      maxHoldMs: 0,
      maxWaitMs: 300_000,
      maxWaitersPerResource: 100,
      maxWaiters: 10_000,
      maxStreams: 10_000,
      maxLeasesPerStream: 1_000,
      maxMessageBytes: 16_384,
      maxConcurrentStreams: 1_000,
      waitFallbackMs: 1_000,
      streamIdleMs: 300_000,
      shutdownGraceMs: 10_000,
      logLevel: 'info',
      adminNetworks: ['127.0.0.0/8', '::1/128'],
      clientTokens: [],
    } satisfies ServerConfig);
    expect(config).not.toHaveProperty('tls');
    expect(config).not.toHaveProperty('adminToken');
    expect(config).not.toHaveProperty('redisPassword');
    expect(warnings).toEqual([]);
  });

  it('reads only the env it is given, never process.env', () => {
    process.env.REDLEASE_MODE = 'single';
    try {
      expect(parsed([], {}).config.mode).toBe('redlock');
    } finally {
      delete process.env.REDLEASE_MODE;
    }
  });
});

describe('precedence: flag, then environment variable, then default', () => {
  it('holds for every integer option', () => {
    for (const o of OPTIONS) {
      if (o.type !== 'integer') continue;
      const [fromEnv, fromFlag] = [o.default + 1, o.default + 2];
      expect(parsed([], {}).config[o.key], o.key).toBe(o.default);
      expect(parsed([], { [o.env]: String(fromEnv) }).config[o.key], o.key).toBe(fromEnv);
      expect(parsed([`${o.flag}=${fromFlag}`], { [o.env]: String(fromEnv) }).config[o.key], o.key).toBe(
        fromFlag,
      );
      expect(parsed([o.flag!, String(fromFlag)], { [o.env]: String(fromEnv) }).config[o.key], o.key).toBe(
        fromFlag,
      );
    }
  });

  it('holds for the other options', () => {
    const env = {
      REDLEASE_NODES: 'redis-a:6379,redis-b:6379,redis-c:6379',
      REDLEASE_GRPC_LISTEN: '127.0.0.2:6000',
      REDLEASE_MODE: 'single',
      REDLEASE_LOG_LEVEL: 'debug',
      REDLEASE_KEY_PREFIX: 'env:',
    };
    expect(parsed([], env).config).toMatchObject({
      nodes: ['redis-a:6379', 'redis-b:6379', 'redis-c:6379'],
      grpcHost: '127.0.0.2',
      grpcPort: 6000,
      mode: 'single',
      logLevel: 'debug',
      keyPrefix: 'env:',
    });
    const argv = [
      '--nodes=[::1]:7001,10.0.0.2:7002,10.0.0.3:7003',
      '--grpc-listen',
      '[::1]:0',
      '--mode=redlock',
      '--log-level',
      'silent',
      '--key-prefix=',
    ];
    expect(parsed(argv, env).config).toMatchObject({
      nodes: ['[::1]:7001', '10.0.0.2:7002', '10.0.0.3:7003'],
      grpcHost: '::1',
      grpcPort: 0,
      mode: 'redlock',
      logLevel: 'silent',
      keyPrefix: '',
    });
  });

  it('counts an empty environment variable as unset', () => {
    const env: Env = {};
    for (const o of OPTIONS) env[o.env] = '';
    expect(parsed([], env)).toEqual(parsed([], {}));
  });

  it('normalises node addresses: spaces around commas, host case, IPv6 spelling', () => {
    expect(parsed(['--nodes', ' Redis-1:1 , [0:0::1]:2,10.0.0.1:3 ']).config.nodes).toEqual([
      'redis-1:1',
      '[::1]:2',
      '10.0.0.1:3',
    ]);
    expect(hostPort('::1', 50051)).toBe('[::1]:50051');
    expect(hostPort('127.0.0.1', 0)).toBe('127.0.0.1:0');
  });

  it('takes booleans as a bare flag or true/false/1/0', () => {
    const tls = ['--tls-cert-file', file('p-cert.pem', CERT), '--tls-key-file', file('p-key.pem', KEY)];
    const ca = ['--tls-ca-file', file('p-ca.pem', CERT, 0o644)];
    expect(parsed([...tls, ...ca, '--tls-require-client-cert']).config.tls?.requireClientCert).toBe(true);
    const env = { REDLEASE_TLS_REQUIRE_CLIENT_CERT: 'true' };
    expect(parsed([...tls, ...ca], env).config.tls?.requireClientCert).toBe(true);
    expect(
      parsed([...tls, ...ca, '--tls-require-client-cert=false'], env).config.tls?.requireClientCert,
    ).toBe(false);
    expect(
      parsed([...tls, ...ca], { REDLEASE_TLS_REQUIRE_CLIENT_CERT: '0' }).config.tls?.requireClientCert,
    ).toBe(false);
  });
});

describe('--admin-networks: who may make admin calls without the admin token', () => {
  it('is loopback by default, and none once an admin token is set (the token alone admits)', () => {
    expect(parsed([]).config.adminNetworks).toEqual(['127.0.0.0/8', '::1/128']);
    const token = { REDLEASE_ADMIN_TOKEN: 'admin-token-0123456789' };
    expect(parsed([], token).config.adminNetworks).toEqual([]);
    expect(parsed(['--admin-networks', '172.16.37.0/24'], token).config.adminNetworks).toEqual([
      '172.16.37.0/24',
    ]);
  });

  it('takes IPv4 and IPv6 networks and single addresses, from the flag or the variable', () => {
    expect(
      parsed(['--admin-networks', ' 172.16.37.0/24, fd00::/8 ,10.1.2.3,::1']).config.adminNetworks,
    ).toEqual(['172.16.37.0/24', 'fd00::/8', '10.1.2.3/32', '::1/128']);
    expect(parsed([], { REDLEASE_ADMIN_NETWORKS: '0.0.0.0/0' }).config.adminNetworks).toEqual(['0.0.0.0/0']);
    expect(parsed(['--admin-networks=']).config.adminNetworks).toEqual([]);
  });
});

describe('invalid configuration is a one-line ConfigError naming the option and what to fix', () => {
  /** [argv, env, option the message must start with (flag and variable), text it must contain] */
  const cases: [string[], Env, OptionSpec['key'] | null, string][] = [
    // integers: decimal whole numbers only
    [
      ['--default-ttl-ms', 'abc'],
      {},
      'defaultTtlMs',
      'must be a whole number of milliseconds in [100, 60000]',
    ],
    [['--retry-count', '1e3'], {}, 'retryCount', 'must be a whole number in [0, 100], got "1e3"'],
    [['--retry-count', '1.5'], {}, 'retryCount', 'got "1.5"'],
    [['--retry-count', ' 5'], {}, 'retryCount', 'got " 5"'],
    [['--retry-count='], {}, 'retryCount', 'got ""'],
    [['--retry-count=-1'], {}, 'retryCount', 'got "-1"'],
    [['--retry-count', '+5'], {}, 'retryCount', 'got "+5"'],
    [['--retry-count', '0x10'], {}, 'retryCount', 'got "0x10"'],
    [['--node-timeout-ms', '100ms'], {}, 'nodeTimeoutMs', 'got "100ms"'],
    [[], { REDLEASE_RETRY_COUNT: '1e3' }, 'retryCount', 'got "1e3"'],
    [[], { REDLEASE_NODE_TIMEOUT_MS: ' 5' }, 'nodeTimeoutMs', 'got " 5"'],
    [[], { REDLEASE_MAX_WAITERS: '99999999999999999999' }, 'maxWaiters', 'in [1, 1000000]'],
    // ranges
    [['--node-timeout-ms', '0'], {}, 'nodeTimeoutMs', 'in [1, 60000], got "0"'],
    [['--max-waiters-per-resource', '0'], {}, 'maxWaitersPerResource', 'in [1, 100000], got "0"'],
    [['--max-message-bytes', '1023'], {}, 'maxMessageBytes', 'a whole number of bytes in [1024, 4194304]'],
    [['--max-message-bytes', '4194305'], {}, 'maxMessageBytes', 'got "4194305"'],
    [['--retry-count', '101'], {}, 'retryCount', 'in [0, 100]'],
    // default ttl outside [min, max]; min above max
    [
      ['--default-ttl-ms', '50'],
      {},
      'defaultTtlMs',
      'in [100, 60000], got "50"; --min-ttl-ms and --max-ttl-ms',
    ],
    [['--max-ttl-ms', '1000'], {}, 'defaultTtlMs', 'in [100, 1000], got 30000 (the default)'],
    [[], { REDLEASE_MIN_TTL_MS: '40000' }, 'defaultTtlMs', 'in [40000, 60000], got 30000 (the default)'],
    [['--min-ttl-ms', '5000', '--max-ttl-ms', '1000'], {}, 'maxTtlMs', 'must not be below --min-ttl-ms'],
    // node addresses
    [['--nodes', 'localhost'], {}, 'nodes', '"localhost" is not host:port'],
    [['--nodes', ':6379'], {}, 'nodes', '":6379" is not host:port'],
    [['--nodes', 'a b:1'], {}, 'nodes', '"a b:1" is not host:port'],
    [['--nodes', 'h:port'], {}, 'nodes', 'the port of "h:port" must be a whole number in [1, 65535]'],
    [['--nodes', 'h:0'], {}, 'nodes', 'the port of "h:0"'],
    [['--nodes', 'h:65536'], {}, 'nodes', 'the port of "h:65536"'],
    [['--nodes', '::1:6379'], {}, 'nodes', 'write an IPv6 address in brackets, as in [::1]:6379'],
    [['--nodes', '[nothost]:1'], {}, 'nodes', '"nothost" in "[nothost]:1" is not an IPv6 address'],
    [['--nodes', '999.1.1.1:1'], {}, 'nodes', 'is not a valid host name or address'],
    [['--nodes', 'a:1,,b:2'], {}, 'nodes', 'entry 2 of "a:1,,b:2" is empty'],
    [['--nodes='], {}, 'nodes', 'entry 1'],
    [[], { REDLEASE_NODES: 'a:1,b' }, 'nodes', '"b" is not host:port'],
    // duplicate nodes, however spelled
    [
      ['--nodes', '127.0.0.1:6381,127.0.0.1:6382,127.0.0.1:6381'],
      {},
      'nodes',
      '127.0.0.1:6381 is listed twice',
    ],
    [['--nodes', 'Redis:1,redis:1'], {}, 'nodes', 'redis:1 is listed twice'],
    [['--nodes', '[::1]:1,[0:0::1]:1'], {}, 'nodes', '[::1]:1 is listed twice'],
    // listen address
    [['--grpc-listen', '127.0.0.1'], {}, 'grpcListen', 'is not host:port'],
    [['--grpc-listen', '127.0.0.1:65536'], {}, 'grpcListen', 'must be a whole number in [0, 65535]'],
    [['--grpc-listen', ':::50051'], {}, 'grpcListen', 'as in [::]:50051'],
    [['--http-listen', '127.0.0.1:x'], {}, 'httpListen', 'must be a whole number in [0, 65535]'],
    [['--http-listen', '127.0.0.1:50051'], {}, 'httpListen', 'is also the gRPC port'],
    // choices
    [['--mode', 'REDLOCK'], {}, 'mode', 'must be one of redlock, single, got "REDLOCK"'],
    [[], { REDLEASE_MODE: 'fast' }, 'mode', 'got "fast"'],
    [
      ['--log-level', 'verbose'],
      {},
      'logLevel',
      'must be one of fatal, error, warn, info, debug, trace, silent',
    ],
    [['--tls-require-client-cert=yes'], {}, 'tlsRequireClientCert', 'must be true or false, got "yes"'],
    // key prefix
    [['--key-prefix', 'lk'], {}, 'keyPrefix', '"lk" overlaps the internal prefix "lkh:"'],
    [['--key-prefix', 'fence:x:'], {}, 'keyPrefix', 'overlaps the internal prefix "fence:"'],
    [['--key-prefix', 'a b'], {}, 'keyPrefix', 'visible ASCII'],
    // flags themselves
    [
      ['--node', 'a:1'],
      {},
      null,
      '--node: unknown option (did you mean --nodes?); see redlease server --help',
    ],
    [['-x'], {}, null, '-x: unknown option'],
    [['serve'], {}, null, 'unexpected argument "serve"'],
    [['--', '--nodes'], {}, null, 'unexpected argument "--nodes"'],
    [['--nodes'], {}, 'nodes', 'needs a value, as --nodes=VALUE'],
    [['--nodes', '--mode', 'single'], {}, 'nodes', 'needs a value'],
    [['--mode', 'single', '--mode=redlock'], {}, 'mode', 'is given more than once'],
    // TLS combinations
    [['--tls-cert-file', 'c.pem'], {}, 'tlsCertFile', 'needs --tls-key-file (REDLEASE_TLS_KEY_FILE) too'],
    [
      [],
      { REDLEASE_TLS_KEY_FILE: 'k.pem' },
      'tlsKeyFile',
      'needs --tls-cert-file (REDLEASE_TLS_CERT_FILE) too',
    ],
    [['--tls-ca-file', 'ca.pem'], {}, 'tlsCaFile', 'client certificates need TLS'],
    [['--tls-require-client-cert'], {}, 'tlsRequireClientCert', 'client certificates need TLS'],
    // secrets
    [['--redis-password-file', '/nonexistent/pw'], {}, 'redisPasswordFile', 'cannot read "/nonexistent/pw"'],
    [[], { REDLEASE_ADMIN_TOKEN_FILE: '/nonexistent/t' }, 'adminTokenFile', 'cannot read "/nonexistent/t"'],
    [['--client-tokens-file='], {}, 'clientTokensFile', 'needs a file path'],
    [[], { REDLEASE_REDIS_USERNAME: 'redlease' }, 'redisUsername', 'is set without a password'],
    [[], { REDLEASE_CLIENT_TOKENS: ' , ,' }, 'clientTokens', 'holds no tokens'],
    // admin networks
    [['--admin-networks', '172.16.37.0/33'], {}, 'adminNetworks', '"172.16.37.0/33" is not a network'],
    [['--admin-networks', '172.16.37/24'], {}, 'adminNetworks', '"172.16.37/24" is not a network'],
    [['--admin-networks', 'fd00::/129'], {}, 'adminNetworks', '"fd00::/129" is not a network'],
    [['--admin-networks', 'localhost'], {}, 'adminNetworks', '"localhost" is not a network'],
    [[], { REDLEASE_ADMIN_NETWORKS: '10.0.0.0/x' }, 'adminNetworks', 'write address/prefix'],
    [[], { REDLEASE_ADMIN_NETWORKS: '10.0.0.0/8,,::1' }, 'adminNetworks', 'entry 2 of'],
  ];

  it.each(cases)('%j %j', (argv, env, key, text) => {
    const error = configError(argv, env);
    expect(error.message).not.toMatch(/[\r\n]/);
    if (key) expect(error.message.startsWith(`${optionLabel(spec(key))}: `), error.message).toBe(true);
    expect(error.message).toContain(text);
  });

  it('gives the exact messages of the documentation', () => {
    expect(configError(['--default-ttl-ms', 'abc']).message).toBe(
      '--default-ttl-ms (REDLEASE_DEFAULT_TTL_MS): must be a whole number of milliseconds in [100, 60000], got "abc"',
    );
    expect(configError([], { REDLEASE_REDIS_PASSWORD_FILE: '/nonexistent/pw' }).message).toBe(
      '--redis-password-file (REDLEASE_REDIS_PASSWORD_FILE): cannot read "/nonexistent/pw": no such file',
    );
  });

  it('keeps a message on one line whatever the input holds', () => {
    const error = configError(['--mode', 'a\nb\r\nc']);
    expect(error.message).toBe('--mode (REDLEASE_MODE): must be one of redlock, single, got "a\\nb\\r\\nc"');
  });
});

describe('secrets come from the environment or files, never from flag values', () => {
  it('refuses a secret given as a flag, without repeating it', () => {
    for (const [flag, env] of [
      ['--redis-password', 'REDLEASE_REDIS_PASSWORD'],
      ['--admin-token', 'REDLEASE_ADMIN_TOKEN'],
      ['--client-tokens', 'REDLEASE_CLIENT_TOKENS'],
    ] as const) {
      const error = configError([`${flag}=hunter2-hunter2`]);
      expect(error.message).toBe(
        `${flag}: not accepted as a flag, since other users can read argv in ps; set ${env} or use ${flag}-file`,
      );
      expect(configError([flag, 'hunter2-hunter2']).message).not.toContain('hunter2');
    }
  });

  it('reads one-line secrets from the environment or from 0600 files, a trailing newline trimmed', () => {
    const admin = 'a'.repeat(32);
    expect(parsed([], { REDLEASE_REDIS_PASSWORD: 'p w#1', REDLEASE_ADMIN_TOKEN: admin })).toMatchObject({
      config: { redisPassword: 'p w#1', adminToken: admin },
      warnings: [],
    });
    const pw = file('redis-password', 'from file\n');
    const token = file('admin-token', `${'b'.repeat(32)}\r\n`);
    const { config, warnings } = parsed(['--redis-password-file', pw], {
      REDLEASE_REDIS_USERNAME: 'redlease',
      REDLEASE_ADMIN_TOKEN_FILE: token,
    });
    expect(config).toMatchObject({
      redisUsername: 'redlease',
      redisPassword: 'from file',
      adminToken: 'b'.repeat(32),
    });
    expect(warnings).toEqual([]);
  });

  it('lets the --…-file flag beat both variables, and refuses both variables at once', () => {
    const pw = file('pw-flag', 'flag wins');
    const env = { REDLEASE_REDIS_PASSWORD: 'env', REDLEASE_REDIS_PASSWORD_FILE: '/nonexistent' };
    expect(parsed(['--redis-password-file', pw], env).config.redisPassword).toBe('flag wins');
    expect(configError([], env).message).toBe(
      'REDLEASE_REDIS_PASSWORD and REDLEASE_REDIS_PASSWORD_FILE are both set: keep one of them',
    );
  });

  it('reads client tokens comma-separated from the environment or one per line from a file', () => {
    const [t1, t2, t3] = ['1'.repeat(20), '2'.repeat(20), '3'.repeat(20)];
    expect(parsed([], { REDLEASE_CLIENT_TOKENS: ` ${t1} ,${t2},,${t1}` }).config.clientTokens).toEqual([
      t1,
      t2,
    ]);
    const tokens = file('tokens', `# workers\n${t1}\n\n  ${t2}  \n# ${t3} retired\n${t3}\n`);
    expect(parsed(['--client-tokens-file', tokens]).config.clientTokens).toEqual([t1, t2, t3]);
    expect(parsed([], { REDLEASE_CLIENT_TOKENS_FILE: tokens }).config.clientTokens).toEqual([t1, t2, t3]);
  });

  it('refuses bad tokens without echoing them, and warns about short ones', () => {
    const spaced = configError([], { REDLEASE_CLIENT_TOKENS: `${'x'.repeat(20)},secret token` });
    expect(spaced.message).toBe(
      'REDLEASE_CLIENT_TOKENS: token 2 may contain only visible ASCII characters, without spaces',
    );
    const inFile = file('bad-tokens', `${'x'.repeat(20)}\n\n  secret\ttoken\n`);
    expect(configError(['--client-tokens-file', inFile]).message).toBe(
      `--client-tokens-file (REDLEASE_CLIENT_TOKENS_FILE): the token on line 3 of "${inFile}" may contain only visible ASCII characters, without spaces`,
    );
    expect(configError(['--client-tokens-file', file('comments', '# none yet\n\n')]).message).toContain(
      'holds no tokens, only comments',
    );
    const same = 'c'.repeat(32);
    expect(configError([], { REDLEASE_ADMIN_TOKEN: same, REDLEASE_CLIENT_TOKENS: same }).message).toBe(
      'REDLEASE_ADMIN_TOKEN: the admin token is also a client token; give admins a token of their own',
    );
    expect(parsed([], { REDLEASE_ADMIN_TOKEN: 'short' }).warnings).toEqual([
      'REDLEASE_ADMIN_TOKEN: the admin token is only 5 characters; use a long random one (openssl rand -hex 32)',
    ]);
  });

  it('refuses a secret file that is empty, not a file, or holds more than one line', () => {
    const empty = file('empty', '\n');
    expect(configError(['--redis-password-file', empty]).message).toBe(
      `--redis-password-file (REDLEASE_REDIS_PASSWORD_FILE): "${empty}" is empty`,
    );
    const sub = join(dir, 'a-directory');
    mkdirSync(sub);
    expect(configError(['--admin-token-file', sub]).message).toBe(
      `--admin-token-file (REDLEASE_ADMIN_TOKEN_FILE): "${sub}" is not a regular file`,
    );
    const twoLines = file('two-lines', 'line one\nline two\n');
    expect(configError(['--redis-password-file', twoLines]).message).toBe(
      `--redis-password-file (REDLEASE_REDIS_PASSWORD_FILE): "${twoLines}" must hold the secret on one line`,
    );
  });

  it('accepts a secret file that group or others can read, with a warning', () => {
    const open = file('open-password', 'pw\n', 0o644);
    const { config, warnings } = parsed(['--redis-password-file', open]);
    expect(config.redisPassword).toBe('pw');
    expect(warnings).toEqual([
      `--redis-password-file (REDLEASE_REDIS_PASSWORD_FILE): "${open}" is readable by group or others (mode 0644); chmod 600 it`,
    ]);
  });
});

describe('TLS', () => {
  const cert = file('cert.pem', CERT, 0o644);
  const key = file('key.pem', KEY);

  it('reads certificate, key and client CA; mTLS only when asked', () => {
    const tls = ['--tls-cert-file', cert, '--tls-key-file', key];
    expect(parsed(tls).config.tls).toEqual({
      cert: Buffer.from(CERT),
      key: Buffer.from(KEY),
      requireClientCert: false,
    });
    const env = { REDLEASE_TLS_CA_FILE: cert, REDLEASE_TLS_REQUIRE_CLIENT_CERT: 'true' };
    const { config, warnings } = parsed(tls, env);
    expect(config.tls).toEqual({
      cert: Buffer.from(CERT),
      key: Buffer.from(KEY),
      ca: Buffer.from(CERT),
      requireClientCert: true,
    });
    expect(warnings).toEqual([]);
  });

  it('refuses a key that is not the certificate’s, files that are not PEM, and mTLS without a CA', () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({
      type: 'pkcs8',
      format: 'pem',
    });
    const otherKey = file('other-key.pem', String(other));
    expect(configError(['--tls-cert-file', cert, '--tls-key-file', otherKey]).message).toBe(
      `--tls-key-file (REDLEASE_TLS_KEY_FILE): "${otherKey}" is not the key of the certificate in "${cert}"`,
    );
    expect(configError(['--tls-cert-file', key, '--tls-key-file', key]).message).toBe(
      `--tls-cert-file (REDLEASE_TLS_CERT_FILE): "${key}" holds no PEM certificate`,
    );
    expect(configError(['--tls-cert-file', cert, '--tls-key-file', cert]).message).toBe(
      `--tls-key-file (REDLEASE_TLS_KEY_FILE): "${cert}" holds no unencrypted PEM private key`,
    );
    expect(configError(['--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-file', key]).message).toBe(
      `--tls-ca-file (REDLEASE_TLS_CA_FILE): "${key}" holds no PEM certificate`,
    );
    expect(
      configError(['--tls-cert-file', cert, '--tls-key-file', key, '--tls-require-client-cert']).message,
    ).toBe(
      '--tls-require-client-cert (REDLEASE_TLS_REQUIRE_CLIENT_CERT): needs --tls-ca-file (REDLEASE_TLS_CA_FILE) to verify client certificates against',
    );
    expect(configError(['--tls-cert-file', '/nonexistent/c.pem', '--tls-key-file', key]).message).toBe(
      '--tls-cert-file (REDLEASE_TLS_CERT_FILE): cannot read "/nonexistent/c.pem": no such file',
    );
  });
});

describe('warnings: usable but probably not meant', () => {
  it('names an unknown REDLEASE_ variable, with the likely one', () => {
    expect(parsed([], { REDLEASE_NODE: 'a:1', PATH: '/bin', REDLEASE_COLOUR: 'blue' }).warnings).toEqual([
      'REDLEASE_COLOUR is not a redlease setting and is ignored; see redlease server --help',
      'REDLEASE_NODE is not a redlease setting and is ignored (did you mean REDLEASE_NODES?); see redlease server --help',
    ]);
  });

  it('warns when gRPC is reachable from other machines without TLS or client tokens', () => {
    const { config, warnings } = parsed(['--grpc-listen', '0.0.0.0:50051']);
    expect(config.grpcHost).toBe('0.0.0.0');
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^--grpc-listen \(REDLEASE_GRPC_LISTEN\): 0\.0\.0\.0:50051 .* without TLS/);
    expect(warnings[1]).toMatch(/no client tokens are set/);
    const secured = parsed(['--grpc-listen', '[::]:50051', '--tls-cert-file', file('w-cert.pem', CERT)], {
      REDLEASE_TLS_KEY_FILE: file('w-key.pem', KEY),
      REDLEASE_CLIENT_TOKENS: 't'.repeat(32),
    });
    expect(secured.warnings).toEqual([]);
  });

  it('warns when redlock mode has fewer than three nodes', () => {
    expect(parsed(['--nodes', '127.0.0.1:6381']).warnings).toEqual([
      '--nodes (REDLEASE_NODES): redlock mode with 1 node stops when any node fails; use 3 or more',
    ]);
    expect(parsed(['--nodes', '127.0.0.1:6381', '--mode', 'single']).warnings).toEqual([]);
  });
});

describe('tracing: the standard OTEL_* variables', () => {
  it('is off without an endpoint, whatever else is set', () => {
    const { config } = parsed([], {
      OTEL_SERVICE_NAME: 'locks',
      OTEL_TRACES_SAMPLER: 'always_on',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_EXPORTER_OTLP_ENDPOINT: '', // empty counts as unset
    });
    expect(config.tracing).toBeUndefined();
  });

  it('sends to <endpoint>/v1/traces over HTTP, to the endpoint itself over gRPC or when it is the traces one', () => {
    expect(parsed([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' }).config.tracing).toEqual({
      url: 'http://collector:4318/v1/traces',
      protocol: 'http/protobuf',
      serviceName: 'redlease',
      sampler: 'parentbased_always_on',
      ratio: 1,
    });
    const grpc = parsed([], {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4317',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
    }).config.tracing;
    expect(grpc?.url).toBe('http://collector:4317');
    const traces = parsed([], {
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://ignored:4318',
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/custom/path',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_SERVICE_NAME: 'locks-eu',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.25',
    }).config.tracing;
    expect(traces).toEqual({
      url: 'https://traces.example/custom/path',
      protocol: 'http/json',
      serviceName: 'locks-eu',
      sampler: 'parentbased_traceidratio',
      ratio: 0.25,
    });
  });

  it.each([
    [
      { OTEL_EXPORTER_OTLP_ENDPOINT: 'localhost:4318' },
      'OTEL_EXPORTER_OTLP_ENDPOINT: "localhost:4318" is not an http:// or https:// URL',
    ],
    [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector' }, 'OTEL_EXPORTER_OTLP_ENDPOINT: "collector" is not a URL'],
    [
      { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'ftp://x/v1/traces' },
      'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "ftp://x/v1/traces" is not an http://',
    ],
    [
      { OTEL_EXPORTER_OTLP_PROTOCOL: 'http' },
      'OTEL_EXPORTER_OTLP_PROTOCOL: must be one of http/protobuf, http/json, grpc, got "http"',
    ],
    [{ OTEL_TRACES_SAMPLER: 'jaeger_remote' }, 'OTEL_TRACES_SAMPLER: must be one of parentbased_always_on,'],
    [
      { OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '1.5' },
      'OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1, got "1.5"',
    ],
    [
      { OTEL_TRACES_SAMPLER_ARG: 'half' },
      'OTEL_TRACES_SAMPLER_ARG: must be a number from 0 to 1, got "half"',
    ],
  ])('%j stops start-up with one line naming the variable', (env, message) => {
    const error = configError([], { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', ...env });
    expect(error.message.startsWith(message), error.message).toBe(true);
    expect(error.message).not.toContain('\n');
  });
});

describe('--help and docs/configuration.md come from the option table', () => {
  it('keys, flags and variables are unique, and each variable is REDLEASE_ + its flag', () => {
    for (const field of ['key', 'flag', 'env'] as const) {
      const values = OPTIONS.map((o) => o[field]).filter((v) => v !== undefined);
      expect(new Set(values).size, field).toBe(values.length);
    }
    for (const o of OPTIONS) {
      if (o.flag) expect(o.env).toBe(`REDLEASE_${o.flag.slice(2).toUpperCase().replaceAll('-', '_')}`);
      else if (o.type === 'otel') expect(o.env.startsWith('OTEL_'), o.env).toBe(true);
      else expect(o.type === 'secret' || o.key === 'redisUsername', o.env).toBe(true);
    }
  });

  it('-h and --help return the help, whatever else is given', () => {
    for (const argv of [['-h'], ['--help'], ['--nodes', 'bad', '--help'], ['--unknown', '-h']]) {
      expect(parseConfig(argv, { REDLEASE_MODE: 'bad' }), argv.join(' ')).toEqual({ help: helpText() });
    }
  });

  it('lists every option with its flag, variable, default and description, grouped', () => {
    const help = helpText();
    expect(help.split('\n')[0]).toBe('Usage: redlease server [options]');
    const lines = help.split('\n');
    for (const o of OPTIONS) {
      const at = lines.findIndex((line) => line.split(/\s+/).includes(o.env));
      expect(at, o.env).toBeGreaterThan(0);
      const line = lines[at]!;
      expect(line.trimStart().startsWith(o.flag ?? '(environment only)'), line).toBe(true);
      expect(line.endsWith(` default ${defaultText(o)}`), line).toBe(true);
      expect(lines[at + 1]!.trim().startsWith(o.description), o.env).toBe(true);
      // under its group's heading
      const heading = lines.slice(0, at).findLast((l) => /^\S.*:$/.test(l));
      expect(heading, o.env).toBe(`${o.group}:`);
    }
    expect(lines.filter((l) => /^\S.*:$/.test(l) && !l.startsWith('Usage'))).toEqual(
      GROUPS.map((g) => `${g}:`),
    );
  });

  it('docs/configuration.md has a row for every option with its flag, variable and default', () => {
    const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const rows = doc.split('\n').filter((line) => line.startsWith('| '));
    for (const o of OPTIONS) {
      const row = rows.find((r) => r.includes(`| \`${o.env}\` |`));
      expect(row, `docs/configuration.md has no row for ${o.env}`).toBeDefined();
      expect(row!.startsWith(o.flag ? `| \`${o.flag}\` |` : '| — |'), row).toBe(true);
      const shown = defaultText(o);
      expect(row!.includes(shown === 'none' ? '| none |' : `| \`${shown}\` |`), row).toBe(true);
    }
  });
});
