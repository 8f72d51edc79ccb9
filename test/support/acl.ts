/** The least privilege a redlease server needs on each Redis node, exactly as the README lists it. */
export const ACL_RULES = [
  'on',
  '>s3cret-for-tests',
  'resetkeys',
  '~lk:*',
  '~lkh:*',
  '~fence:*',
  '~redlease:*',
  'resetchannels',
  '&redlease:released',
  '-@all',
  ...['evalsha', 'eval', 'get', 'set', 'scan', 'pttl', 'info', 'client|setname'].map((c) => `+${c}`),
  ...['exists', 'incr', 'pexpire', 'time', 'del', 'publish', 'subscribe'].map((c) => `+${c}`),
];
