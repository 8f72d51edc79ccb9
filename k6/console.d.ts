// k6 has a console (its messages go to k6's log); @types/k6 leaves it to the DOM library, which k6 lacks.
declare const console: {
  log(...data: unknown[]): void;
  warn(...data: unknown[]): void;
  error(...data: unknown[]): void;
};
