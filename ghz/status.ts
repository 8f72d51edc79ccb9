// gRPC status codes as ghz reports them: by grpc-go's names (codes.Code.String(): "OK", "Aborted",
// "FailedPrecondition"…), and errors as grpc-go's status errors print ("rpc error: code = … desc = …").

const NAMES = [
  'OK',
  'Canceled',
  'Unknown',
  'InvalidArgument',
  'DeadlineExceeded',
  'NotFound',
  'AlreadyExists',
  'PermissionDenied',
  'ResourceExhausted',
  'FailedPrecondition',
  'Aborted',
  'OutOfRange',
  'Unimplemented',
  'Internal',
  'Unavailable',
  'DataLoss',
  'Unauthenticated',
] as const;

/** grpc-go's name of status code `code` ("Code(17)" for codes outside the table, as Go prints them). */
export function statusName(code: number): string {
  return NAMES[code] ?? `Code(${code})`;
}

/** The text of a failed call as ghz prints it in its error distribution. */
export function rpcErrorText(code: number, details: string): string {
  return `rpc error: code = ${statusName(code)} desc = ${details}`;
}
