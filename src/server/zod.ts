// zod, loaded through require: the one instance config.ts and tokens.ts share. config.ts must load it
// synchronously, and only once a config file is read (client commands never need it); an ESM import elsewhere
// would load a second copy of its ~100 modules beside the CommonJS one.

import { createRequire } from "node:module";
import type * as Zod from "zod";

export type { Zod };

export const loadZod = (): typeof Zod => createRequire(import.meta.url)("zod") as typeof Zod;
