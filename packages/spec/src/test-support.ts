import { isMagikError, type MagikError } from "./errors.ts";

// For tests in every package: they assert on the code and details of the MagikError a call gives, and a call
// that succeeds or throws anything else must fail the test rather than pass it by accident.

/** The MagikError `fn` throws. Anything else it throws is rethrown; returning is an error. */
export function thrownMagikError(fn: () => unknown): MagikError {
  try {
    fn();
  } catch (err) {
    if (isMagikError(err)) return err;
    throw err;
  }
  throw new Error("expected a MagikError, but the call returned");
}

/** The MagikError `promise` rejects with. Any other rejection is rethrown; resolving is an error. */
export async function rejectedMagikError(promise: Promise<unknown>): Promise<MagikError> {
  try {
    await promise;
  } catch (err) {
    if (isMagikError(err)) return err;
    throw err;
  }
  throw new Error("expected a MagikError, but the promise resolved");
}
