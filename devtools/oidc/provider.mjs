// An OpenID Connect provider for tests: panva's certified oidc-provider, configured with one
// client and a few test users (with passwords) from the JSON file named by its first argument:
//   {"port": 43210, "client": {"id": "...", "secret": "...", "redirect_uri": "..."},
//    "users": {"ayu": {"password": "...", "claims": {"name": "Ayu", "pantau_role": "..."}}}}
// The login and consent steps are ours (a password form, consent granted): oidc-provider's
// devInteractions accept any password, which would not test anything.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import http from "node:http";
import Provider from "oidc-provider";

const config = JSON.parse(readFileSync(process.argv[2], "utf8"));
const issuer = `http://127.0.0.1:${config.port}`;
const users = config.users;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: config.client.id,
      client_secret: config.client.secret,
      redirect_uris: [config.client.redirect_uri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_basic",
    },
  ],
  async findAccount(ctx, id) {
    if (!Object.hasOwn(users, id)) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, preferred_username: id, ...users[id].claims };
      },
    };
  },
  claims: {
    openid: ["sub"],
    profile: ["preferred_username", "name"],
    pantau: ["pantau_role", "pantau_districts"],
  },
  scopes: ["openid", "profile", "pantau"],
  cookies: { keys: [randomBytes(32).toString("hex")] },
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
});

const page = (uid, message) => `<!doctype html><title>test IdP</title>
<form method="post" action="/interaction/${uid}/login">
<p>${message}</p>
<input name="username"> <input name="password" type="password"> <button>Sign in</button>
</form>`;

async function readForm(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.prompt.name === "login") {
    if (action !== "login") {
      res.writeHead(200, { "Content-Type": "text/html" }).end(page(uid, "sign in"));
      return;
    }
    const form = await readForm(req);
    const name = form.get("username") ?? "";
    if (!Object.hasOwn(users, name) || users[name].password !== form.get("password")) {
      res.writeHead(401, { "Content-Type": "text/html" }).end(page(uid, "wrong password"));
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: name } },
      { mergeWithLastSubmission: false });
    return;
  }
  // Consent: grant what the client asked for.
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
  const missing = details.prompt.details;
  if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(" "));
  if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } },
    { mergeWithLastSubmission: true });
}

const callback = provider.callback();
http
  .createServer((req, res) => {
    const found = /^\/interaction\/([^/?]+)(?:\/(login))?/.exec(req.url);
    if (!found) return callback(req, res);
    interaction(req, res, found[1], found[2]).catch((error) => {
      res.writeHead(500, { "Content-Type": "text/plain" }).end(String(error));
    });
  })
  .listen(config.port, "127.0.0.1", () => console.log(`oidc-provider listening on ${issuer}`));
