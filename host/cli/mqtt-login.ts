// An application's MQTT login made through the admin API, the way an operator would make one: what
// `sesame start` prints for mosquitto_sub and mosquitto_pub.
export type MqttLogin = { username: string; password: string };

/** A credential for every device with read and command access; its password is in this answer only. */
export async function createAppLogin(adminUrl: string, token: string, name: string): Promise<MqttLogin> {
  const res = await fetch(`${adminUrl}/v1/mqtt/credentials`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ name, devices: "all", access: "both" }),
  });
  if (res.status !== 201) throw new Error(`making an MQTT credential: ${res.status} ${await res.text()}`);
  const r = (await res.json()) as { credential: { username: string }; password: string };
  return { username: r.credential.username, password: r.password };
}
