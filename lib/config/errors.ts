/** A setting given to the CDK app (context, the settings file) is wrong; the message names it. */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}
