// Where a detached container's output is logged (docker's json-file format), for monitor and logs.
export const LOG_FILE = 'container-json.log';
