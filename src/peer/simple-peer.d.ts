// simple-peer's prebuilt browser bundle. We import it instead of the package's main entry because
// Vite's bundling of the main entry fails at run time with "global is not defined" (it expects Node's
// global, process and Buffer); the bundle carries its own. Same API, so reuse @types/simple-peer.
declare module 'simple-peer/simplepeer.min.js' {
  import SimplePeer from 'simple-peer';
  export default SimplePeer;
}
