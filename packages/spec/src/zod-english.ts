import { config } from "zod/v4/core";
import en from "zod/v4/locales/en.js";

/**
 * English zod messages for schemas built with `zod/mini`. Classic `zod` installs this locale when its first
 * schema is built; mini installs none, which leaves every message as "Invalid input". Importing this module
 * installs English unless a locale is already set (the same rule as classic zod's, so an explicit choice
 * wins), and only English: the other locales stay out of bundles.
 */
if (!config().localeError) config(en());
