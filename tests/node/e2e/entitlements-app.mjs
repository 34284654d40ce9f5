// A small app backend, written the way the WorkOS documentation shows for Express. It reads the
// `wos-session` cookie with cookie-parser and refreshes the session with the official Node SDK.
// Then it sets the new sealed cookie and returns the refreshed access token's entitlements. The
// end-to-end suite and the demo run it on 127.0.0.1 against the service, as an app would run it
// against WorkOS.
import express from 'express';
import cookieParser from 'cookie-parser';

/** The name of the cookie that the WorkOS SDKs seal sessions into. */
export const SESSION_COOKIE = 'wos-session';

/**
 * Builds the Express app. `GET /api/entitlements` returns `{entitlements}` with the refreshed
 * token's lookup keys, which are `null` when the token carries no claim, like the service's own
 * route. It returns 401 `{reason}` with the SDK's failure reason when the refresh fails.
 */
export function createEntitlementsApp({ workos, cookiePassword }) {
  const app = express();
  app.use(cookieParser());

  app.get('/api/entitlements', async (req, res) => {
    const session = workos.userManagement.loadSealedSession({
      sessionData: req.cookies[SESSION_COOKIE],
      cookiePassword,
    });

    const refreshed = await session.refresh();
    if (!refreshed.authenticated) {
      res.clearCookie(SESSION_COOKIE);
      res.status(401).json({ reason: refreshed.reason });
      return;
    }

    res.cookie(SESSION_COOKIE, refreshed.sealedSession, {
      path: '/',
      httpOnly: true,
      secure: true,
      sameSite: 'lax',
    });
    res.json({ entitlements: refreshed.entitlements ?? null });
  });

  return app;
}

/** Starts `app` on a free port of 127.0.0.1 and returns its base URL and a `close` function. */
export function listen(app) {
  return new Promise((resolve, reject) => {
    const server = app.listen(0, '127.0.0.1', (error) => {
      if (error) {
        reject(error);
        return;
      }
      const { port } = server.address();
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((done) => {
            server.closeAllConnections();
            server.close(() => done());
          }),
      });
    });
  });
}
