export { loadBundle } from "./bundle.ts";
export { ConsoleProxy } from "./console-proxy.ts";
export type { NativeCreateOptions } from "./container/create.ts";
export { defaultSpec } from "./default-spec.ts";
export { exitStatusOf, NativeRuntime, type NativeRuntimeOptions } from "./native-runtime.ts";
export { parseSignal, signalName } from "./signals.ts";
export { DEFAULT_STATE_ROOT, StateStore } from "./state-store.ts";
export { consoleSocket, linuxSyscall, type Syscall } from "./syscall.ts";
