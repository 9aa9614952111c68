// The signed-in token lives in sessionStorage only: never in a URL, a
// cookie or localStorage. Closing the tab or signing out forgets it.

const TOKEN = "incubatord.token";
const SCOPE = "incubatord.scope";
const FLASH = "incubatord.flash";

export const session = {
  token() {
    return sessionStorage.getItem(TOKEN);
  },
  // {admin: true} or {admin: false, incubator: "HRB-001"}
  scope() {
    try {
      return JSON.parse(sessionStorage.getItem(SCOPE)) || null;
    } catch {
      return null;
    }
  },
  signIn(token, scope) {
    sessionStorage.setItem(TOKEN, token);
    sessionStorage.setItem(SCOPE, JSON.stringify(scope));
  },
  signOut(flashKey) {
    sessionStorage.removeItem(TOKEN);
    sessionStorage.removeItem(SCOPE);
    if (flashKey) sessionStorage.setItem(FLASH, flashKey);
  },
  // A message key for the sign-in page, shown once.
  takeFlash() {
    const f = sessionStorage.getItem(FLASH);
    sessionStorage.removeItem(FLASH);
    return f;
  },
};
