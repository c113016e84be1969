// An upstream system in another language: Node.js 18+ with nothing but fetch.
// usage: node place_order.mjs BASE_URL TOKEN KEY SKU
// Places one order twice with the same Idempotency-Key and prints what it saw as JSON.
const [baseUrl, token, key, sku] = process.argv.slice(2);

async function placeOrder() {
  const response = await fetch(`${baseUrl}/v1/orders`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": "application/json",
      "Idempotency-Key": key,
      Prefer: "wait=30",
    },
    body: JSON.stringify({ customer_ref: "node-shop", lines: [{ sku, qty: 1 }] }),
  });
  return {
    status: response.status,
    replayed: response.headers.get("idempotent-replayed"),
    location: response.headers.get("location"),
    body: await response.json(),
  };
}

const first = await placeOrder();
const second = await placeOrder();
console.log(JSON.stringify({ first, second }));
