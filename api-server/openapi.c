/* OpenAPI 3.0 from the route tables (openapi.h): a path per route with its
 * path and query parameters, a JSON request body for POST/PUT fields, the
 * security schemes of access.c and WildDuck's error shape. */
#include "openapi.h"

#include <stdio.h>
#include <string.h>

static json_t *field_schema(const struct api_field *f)
{
	json_t *schema = json_object();
	switch (f->type) {
	case API_T_STRING:
	case API_T_EMAIL:
		json_object_set_new(schema, "type", json_string("string"));
		if (f->type == API_T_EMAIL)
			json_object_set_new(schema, "format", json_string("email"));
		if (f->min > 0)
			json_object_set_new(schema, "minLength", json_integer(f->min));
		if (f->max > 0)
			json_object_set_new(schema, "maxLength", json_integer(f->max));
		if (f->choices != NULL) {
			json_t *values = json_array();
			for (size_t i = 0; f->choices[i] != NULL; i++)
				json_array_append_new(values, json_string(f->choices[i]));
			json_object_set_new(schema, "enum", values);
		}
		break;
	case API_T_INT:
		json_object_set_new(schema, "type", json_string("integer"));
		if (f->min != 0 || f->max != 0) {
			json_object_set_new(schema, "minimum", json_integer(f->min));
			json_object_set_new(schema, "maximum", json_integer(f->max));
		}
		break;
	case API_T_BOOL:
		json_object_set_new(schema, "type", json_string("boolean"));
		break;
	case API_T_OID:
	case API_T_USER:
		json_object_set_new(schema, "type", json_string("string"));
		json_object_set_new(schema, "pattern", json_string(f->type == API_T_USER
									   ? "^([0-9a-fA-F]{24}|me)$"
									   : "^[0-9a-fA-F]{24}$"));
		break;
	case API_T_STRINGS:
		json_object_set_new(schema, "type", json_string("array"));
		json_object_set_new(schema, "items", json_pack("{s:s}", "type", "string"));
		if (f->max > 0)
			json_object_set_new(schema, "maxItems", json_integer(f->max));
		break;
	case API_T_OBJECT:
		json_object_set_new(schema, "type", json_string("object"));
		break;
	case API_T_ANY:
		break;
	case API_T_DATE:
		json_object_set_new(schema, "type", json_string("string"));
		json_object_set_new(schema, "format", json_string("date-time"));
		break;
	}
	if ((f->flags & API_F_NULLABLE) != 0)
		json_object_set_new(schema, "nullable", json_true());
	if (f->description != NULL)
		json_object_set_new(schema, "description", json_string(f->description));
	return schema;
}

/* "/users/:user/x" → "/users/{user}/x" */
static void openapi_path(const char *path, char *out, size_t size)
{
	size_t o = 0;
	bool in_param = false;
	for (const char *p = path; *p != '\0' && o + 2 < size; p++) {
		if (*p == ':') {
			out[o++] = '{';
			in_param = true;
		} else if (*p == '/' && in_param) {
			out[o++] = '}';
			out[o++] = '/';
			in_param = false;
		} else {
			out[o++] = *p;
		}
	}
	if (in_param && o + 1 < size)
		out[o++] = '}';
	out[o] = '\0';
}

static json_t *error_response(const char *description)
{
	return json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", description, "content",
			 "application/json", "schema", "$ref", "#/components/schemas/Error");
}

static json_t *operation(const struct api_route *r)
{
	json_t *op = json_object();
	json_object_set_new(op, "tags", json_pack("[s]", r->tag != NULL ? r->tag : "Other"));
	if (r->summary != NULL)
		json_object_set_new(op, "summary", json_string(r->summary));
	if (r->name != NULL)
		json_object_set_new(op, "operationId", json_string(r->name));
	json_t *params = json_array();
	json_t *body_props = json_object();
	json_t *required = json_array();
	bool body_method = r->method == API_POST || r->method == API_PUT;
	for (const struct api_field *f = r->fields; f != NULL && f->name != NULL; f++) {
		bool in_path = (f->flags & API_F_PATH) != 0;
		if (in_path || !body_method || (f->flags & API_F_QUERY) != 0) {
			json_t *p = json_object();
			json_object_set_new(p, "name", json_string(f->name));
			json_object_set_new(p, "in", json_string(in_path ? "path" : "query"));
			if (in_path || (f->flags & API_F_REQUIRED) != 0)
				json_object_set_new(p, "required", json_true());
			if (f->description != NULL)
				json_object_set_new(p, "description", json_string(f->description));
			json_object_set_new(p, "schema", field_schema(f));
			json_array_append_new(params, p);
		} else {
			json_object_set_new(body_props, f->name, field_schema(f));
			if ((f->flags & API_F_REQUIRED) != 0)
				json_array_append_new(required, json_string(f->name));
		}
	}
	if (json_array_size(params) > 0)
		json_object_set(op, "parameters", params);
	if ((r->flags & API_R_RAW_BODY) != 0 || (r->flags & API_R_JSON_OR_RAW) != 0) {
		json_t *content = json_object();
		json_object_set_new(content, "message/rfc822",
				    json_pack("{s:{s:s,s:s}}", "schema", "type", "string", "format",
					      "binary"));
		if ((r->flags & API_R_JSON_OR_RAW) != 0) {
			json_t *schema = json_pack("{s:s,s:O}", "type", "object", "properties",
						   body_props);
			json_object_set_new(content, "application/json",
					    json_pack("{s:o}", "schema", schema));
		}
		json_object_set_new(op, "requestBody", json_pack("{s:o}", "content", content));
	} else if (json_object_size(body_props) > 0) {
		json_t *schema = json_pack("{s:s,s:O}", "type", "object", "properties", body_props);
		if (json_array_size(required) > 0)
			json_object_set(schema, "required", required);
		json_object_set_new(op, "requestBody",
				    json_pack("{s:b,s:{s:{s:o}}}", "required",
					      json_array_size(required) > 0, "content",
					      "application/json", "schema", schema));
	}
	json_decref(params);
	json_decref(body_props);
	json_decref(required);

	json_t *responses = json_object();
	if ((r->flags & API_R_STREAM) != 0)
		json_object_set_new(responses, "200",
				    json_pack("{s:s,s:{s:{s:{s:s}}}}", "description",
					      "Server-Sent Events stream", "content",
					      "text/event-stream", "schema", "type", "string"));
	else
		json_object_set_new(responses, "200",
				    json_pack("{s:s,s:{s:{s:{s:s}}}}", "description", "Success",
					      "content", "application/json", "schema", "$ref",
					      "#/components/schemas/Success"));
	json_object_set_new(responses, "400", error_response("Invalid input"));
	if ((r->flags & API_R_PUBLIC) == 0)
		json_object_set_new(responses, "403", error_response("Invalid token or missing privileges"));
	if (strchr(r->path, ':') != NULL)
		json_object_set_new(responses, "404", error_response("Not found"));
	json_object_set_new(responses, "500", error_response("Database or Redis error"));
	json_object_set_new(op, "responses", responses);
	if ((r->flags & API_R_PUBLIC) != 0)
		json_object_set_new(op, "security", json_array());
	else
		json_object_set_new(op, "x-access", json_pack("{s:s,s:s}", "resource", r->resource,
							      "action",
							      (const char *[]){ "create", "read", "update",
										"delete" }[r->action]));
	return op;
}

json_t *api_openapi_document(void)
{
	json_t *doc = json_object();
	json_object_set_new(doc, "openapi", json_string("3.0.3"));
	json_object_set_new(doc, "info",
			    json_pack("{s:s,s:s,s:s}", "title", "wd-api (wildduck-c)", "version",
				      "1.0.0", "description",
				      "WildDuck-compatible HTTP API of wildduck-c. Successful "
				      "answers carry \"success\": true; errors are {error, code} "
				      "with a 4xx/5xx status."));
	json_t *paths = json_object();
	size_t count;
	const struct api_route *const *routes = api_routes_all(&count);
	for (size_t i = 0; i < count; i++) {
		char path[300];
		openapi_path(routes[i]->path, path, sizeof(path));
		json_t *item = json_object_get(paths, path);
		if (item == NULL) {
			item = json_object();
			json_object_set_new(paths, path, item);
		}
		char method[8];
		snprintf(method, sizeof(method), "%s", api_method_name(routes[i]->method));
		for (char *p = method; *p != '\0'; p++)
			*p = (char)(*p - 'A' + 'a');
		json_object_set_new(item, method, operation(routes[i]));
	}
	json_object_set_new(doc, "paths", paths);
	json_t *schemas = json_pack(
		"{s:{s:s,s:{s:{s:s}}},s:{s:s,s:[s],s:{s:{s:s},s:{s:s},s:{s:s}}}}", "Success",
		"type", "object", "properties", "success", "type", "boolean", "Error", "type",
		"object", "required", "error", "properties", "error", "type", "string", "code",
		"type", "string", "details", "type", "object");
	json_t *security = json_pack(
		"{s:{s:s,s:s,s:s},s:{s:s,s:s,s:s},s:{s:s,s:s}}", "AccessTokenHeader", "type",
		"apiKey", "in", "header", "name", "X-Access-Token", "AccessTokenQuery", "type",
		"apiKey", "in", "query", "name", "accessToken", "BearerToken", "type", "http",
		"scheme", "bearer");
	json_object_set_new(doc, "components",
			    json_pack("{s:o,s:o}", "schemas", schemas, "securitySchemes", security));
	json_object_set_new(doc, "security",
			    json_pack("[{s:[]},{s:[]},{s:[]}]", "AccessTokenHeader",
				      "AccessTokenQuery", "BearerToken"));
	return doc;
}
