// The admin API's routes for MQTT application credentials (./mqtt-credentials.ts). The password appears in
// the create response and nowhere else: not in the audit row, not in a log, not in the list.
import type { Route } from "./admin-routes";
import type { ControllerStore } from "./store";
import { boolParam, fields, mqttCredentialRequest, mqttUsername, query } from "./validate";

export function mqttRoutes({ mqtt }: ControllerStore): Route[] {
  return [
    {
      method: "POST", path: /^\/v1\/mqtt\/credentials$/, action: "mqtt-credential.create",
      async handle(c) {
        query(c.query, []);
        const req = mqttCredentialRequest(c.body);
        const made = await mqtt.create(req);
        c.target(made.credential.username);
        c.note({ access: made.credential.access, devices: req.devices === "all" ? "all" : req.devices.length });
        return { status: 201, body: made };
      },
    },
    {
      method: "GET", path: /^\/v1\/mqtt\/credentials$/, action: "mqtt-credential.list",
      async handle(c) {
        query(c.query, ["revoked"]);
        return { status: 200, body: { credentials: await mqtt.list({ includeRevoked: boolParam(c.query, "revoked") ?? true }) } };
      },
    },
    {
      method: "POST", path: /^\/v1\/mqtt\/credentials\/([^/]+)\/revoke$/, action: "mqtt-credential.revoke",
      async handle(c) {
        query(c.query, []);
        fields(c.body, []);
        const username = mqttUsername(c.params[0]);
        c.target(username);
        return { status: 200, body: { credential: await mqtt.revoke(username) } };
      },
    },
    {
      method: "GET", path: /^\/v1\/mqtt\/mosquitto$/, action: "mqtt-credential.export",
      async handle(c) {
        query(c.query, []);
        return { status: 200, body: await mqtt.mosquittoFiles() };
      },
    },
  ];
}
