// Seals a session the way @workos-inc/node does after a login. The script calls
// userManagement.authenticateWithRefreshToken with `session: { sealSession: true }` against a
// loopback server that returns the given authenticate response. The SDK itself then converts
// the user to camelCase, reads org_id from the access token and seals the cookie.
//
// stdin:  {"cookiePassword": "...",
//          "authenticateResponse": {user, access_token, refresh_token, ...}}
// stdout: {"sealedSession": "Fe26.2*...~2",
//          "session": <the SDK's authentication result without sealedSession>}
import { printJson, readJsonStdin, withLoopbackWorkOS } from './workos-loopback.mjs';

const { cookiePassword, authenticateResponse } = await readJsonStdin();

const result = await withLoopbackWorkOS({ authenticateResponse }, (workos) =>
  workos.userManagement.authenticateWithRefreshToken({
    refreshToken: 'rt_tools_placeholder',
    session: { sealSession: true, cookiePassword },
  }),
);

const { sealedSession, ...session } = result;
printJson({ sealedSession, session });
