#include "oke/problem.h"

#include <cjson/cJSON.h>
#include <stdio.h>

char *okegw_problem_json(int status, const char *title, const char *detail, const char *connector) {
  cJSON *o = cJSON_CreateObject();
  if (!o)
    return NULL;
  char st[16];
  snprintf(st, sizeof st, "%d", status);
  cJSON_AddStringToObject(o, "type", "about:blank");
  cJSON_AddStringToObject(o, "title", title ? title : "Error");
  cJSON_AddStringToObject(o, "status", st);
  if (detail)
    cJSON_AddStringToObject(o, "detail", detail);
  if (connector)
    cJSON_AddStringToObject(o, "connector", connector);
  char *s = cJSON_PrintUnformatted(o);
  cJSON_Delete(o);
  return s;
}

const char *okegw_status_text(int status) {
  switch (status) {
  case 200: return "OK";
  case 201: return "Created";
  case 202: return "Accepted";
  case 204: return "No Content";
  case 304: return "Not Modified";
  case 308: return "Permanent Redirect";
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 408: return "Request Timeout";
  case 409: return "Conflict";
  case 411: return "Length Required";
  case 413: return "Content Too Large";
  case 415: return "Unsupported Media Type";
  case 422: return "Unprocessable Content";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  case 505: return "HTTP Version Not Supported";
  }
  return status < 300 ? "OK" : status < 500 ? "Client Error" : "Server Error";
}
