// Reads a sealed wos-session value with @workos-inc/node.
//
// stdin:  {"cookiePassword": "...", "sealedSession": "Fe26.2*...", "jwks": {"keys": [...]}?}
// stdout: {"session": <userManagement.getSessionFromCookie result, {} when unsealing failed>,
//          "authentication": <loadSealedSession(...).authenticate() result, or null without jwks>}
//
// With `jwks`, authenticate() verifies the sealed access token against that key set, which a
// loopback server serves at /sso/jwks/:clientId, exactly as the SDK fetches it in production.
import { printJson, readJsonStdin, withLoopbackWorkOS } from './workos-loopback.mjs';

const { cookiePassword, sealedSession, jwks } = await readJsonStdin();

const output = await withLoopbackWorkOS({ jwks }, async (workos) => {
  const session = await workos.userManagement.getSessionFromCookie({
    sessionData: sealedSession,
    cookiePassword,
  });
  let authentication = null;
  if (jwks) {
    authentication = await workos.userManagement
      .loadSealedSession({ sessionData: sealedSession, cookiePassword })
      .authenticate();
  }
  return { session, authentication };
});

printJson(output);
